"""One pooled aiohttp client per provider, created at start-up (DESIGN.md "Hot paths").

The proxy forwards with aiohttp rather than httpx: measured on a 2-core machine, a forwarding
route reached 421 requests/s through a shared ``httpx.AsyncClient`` and over 5,000 through an
``aiohttp.ClientSession`` (encode/httpx issue 3215); ``bench/proxy.py`` checks it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

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
    session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def start(self) -> None:
        """Open the connection pool (call once, inside the running event loop)."""
        if self.session is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            limit_per_host=self.max_connections,
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self.connect_timeout, sock_read=self.timeout
            ),
            # The proxy passes bodies through byte for byte: no decompression, no cookies,
            # none of aiohttp's default request headers.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            raise_for_status=False,
        )

    async def close(self) -> None:
        """Close the pool."""
        if self.session is not None:
            await self.session.close()
            self.session = None
