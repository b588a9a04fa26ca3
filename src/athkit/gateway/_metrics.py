"""Prometheus metrics of one gateway app, in its own ``CollectorRegistry`` (never the global one,
so several apps in a process — tests, embedding — keep separate counts).

    athkit_gateway_requests_total{endpoint, outcome}   every request; outcome is the ATH error
                                                        code, ``upstream_2xx``… for forwarded
                                                        calls, or the HTTP status elsewhere
    athkit_gateway_proxy_seconds{provider}              proxy latency, check to last byte
    athkit_gateway_active_tokens                        unrevoked, unexpired ATH tokens

The active-token gauge is one ``COUNT`` in the database (never the token rows), and a scrape does
not wait for it: the first scrape counts, later ones answer at once with the last count and, when
it is older than ``GAUGE_MAX_AGE`` seconds, start one recount in the background. With 100,000
tokens on a busy PostgreSQL a count takes a few hundred milliseconds, which a scrape (and the
proxy calls sharing its event loop) should not pay each time; the gauge is at most that old.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from athkit.protocol import PROXY_PREFIX

_log = logging.getLogger("athkit.gateway")

GAUGE_MAX_AGE = 30.0  # seconds a scrape may show an active-token count for
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """The gateway's counters, histogram and gauge."""

    def __init__(self, providers: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._providers = frozenset(providers)
        self.requests = Counter(
            "athkit_gateway_requests",
            "Requests handled, by endpoint and outcome.",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.proxy_seconds = Histogram(
            "athkit_gateway_proxy_seconds",
            "Time from a proxy request's arrival to its last byte sent, by provider.",
            ["provider"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.active_tokens = Gauge(
            "athkit_gateway_active_tokens",
            "ATH access tokens neither revoked nor expired.",
            registry=self.registry,
        )
        self._proxy_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._counted_at: float | None = None
        self._recount: asyncio.Task[None] | None = None

    def proxy_done(self, provider_id: str, outcome: str, seconds: float) -> None:
        """Count one proxy request and its latency (label children cached: hot path)."""
        key = (provider_id, outcome)
        children = self._proxy_children.get(key)
        if children is None:
            # Unknown provider ids come from the URL: fold them into one label value.
            label = provider_id if provider_id in self._providers else "unknown"
            children = (
                self.requests.labels(PROXY_PREFIX + "{provider_id}/{path}", outcome),
                self.proxy_seconds.labels(label),
            )
            if len(self._proxy_children) < 10_000:
                self._proxy_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def request_done(self, endpoint: str, status: int) -> None:
        """Count one request to a non-proxy endpoint."""
        self.requests.labels(endpoint, str(status)).inc()

    async def render(self, count_active_tokens: Callable[[], Awaitable[int]]) -> bytes:
        """The text exposition; the active-token gauge is refreshed as the module docstring says.

        The first call raises if the count fails (the caller answers 503); a background recount
        that fails is logged and the previous count stays.
        """
        if self._counted_at is None:
            await self._count(count_active_tokens)
        elif time.monotonic() - self._counted_at > GAUGE_MAX_AGE and self._recount is None:
            self._recount = asyncio.get_running_loop().create_task(
                self._background_count(count_active_tokens)
            )
        return bytes(generate_latest(self.registry))

    async def _count(self, count_active_tokens: Callable[[], Awaitable[int]]) -> None:
        self.active_tokens.set(await count_active_tokens())
        self._counted_at = time.monotonic()

    async def _background_count(self, count_active_tokens: Callable[[], Awaitable[int]]) -> None:
        try:
            await self._count(count_active_tokens)
        except Exception:
            _log.warning("metrics: counting active tokens failed; the gauge keeps its last value")
        finally:
            self._recount = None
