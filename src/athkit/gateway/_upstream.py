"""One pool of keep-alive upstream connections per provider, opened at start-up (DESIGN.md
"Hot paths").

The client is the proxy's own lean HTTP/1.1 client (``athkit.gateway._http1``): measured with
``bench/proxy.py`` it costs a fraction of aiohttp's request path, which in turn measured far
ahead of httpx for this job (421 against over 5,000 requests/s on a 2-core machine, encode/httpx
issue 3215). See bench/RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from athkit.gateway._http1 import Http1Pool
from athkit.gateway._mcp import McpGate
from athkit.protocol import ScopeRouteMap


@dataclass(slots=True)
class Upstream:
    """A provider as the proxy sees it: where to forward, which calls each scope allows."""

    provider_id: str
    api_base: str
    routes: ScopeRouteMap
    connect_timeout: float
    timeout: float
    max_connections: int = 100
    mcp: McpGate | None = None
    pool: Http1Pool | None = field(default=None, repr=False)

    async def start(self) -> None:
        """Open the connection pool (call once, inside the running event loop)."""
        if self.pool is None:
            self.pool = Http1Pool(
                self.api_base,
                max_connections=self.max_connections,
                connect_timeout=self.connect_timeout,
                read_timeout=self.timeout,
            )

    async def close(self) -> None:
        """Close the pool's connections."""
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
