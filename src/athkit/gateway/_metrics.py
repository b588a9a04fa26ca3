"""Prometheus metrics of one gateway app, in its own ``CollectorRegistry`` (never the global one,
so several apps in a process — tests, embedding — keep separate counts).

    athkit_gateway_requests_total{endpoint, outcome}   every request; outcome is the ATH error
                                                        code, ``upstream_2xx``… for forwarded
                                                        calls, or the HTTP status elsewhere
    athkit_gateway_proxy_seconds{provider}              proxy latency, check to last byte
    athkit_gateway_active_tokens                        unrevoked, unexpired ATH tokens (at scrape)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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

    def proxy_done(self, provider_id: str, outcome: str, seconds: float) -> None:
        """Count one proxy request and its latency (label children cached: hot path)."""
        key = (provider_id, outcome)
        children = self._proxy_children.get(key)
        if children is None:
            # Unknown provider ids come from the URL: fold them into one label value.
            label = provider_id if provider_id in self._providers else "unknown"
            children = (
                self.requests.labels("/ath/proxy/{provider_id}/{path}", outcome),
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
        """The text exposition, with the active-token gauge refreshed first."""
        self.active_tokens.set(await count_active_tokens())
        return bytes(generate_latest(self.registry))
