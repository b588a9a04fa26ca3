"""Per-agent rate limits (ATH §6: "rate-limit per agent"), in memory or shared through Redis.

Both implementations count with the same *sliding window counter*: time is cut into fixed
windows of ``window`` seconds, and a request at ``elapsed`` seconds into the current window sees

    estimate = previous_count × (window − elapsed) / window + current_count

It is allowed when ``estimate + 1 ≤ limit`` and then counted; a refused request is not counted,
so an agent that keeps hammering is not locked out for longer than its own excess. The estimate
smooths the burst a plain fixed window allows at window boundaries, at the cost of two counters.

``RedisRateLimiter`` runs the whole check-and-count as one Lua script on the Redis server, with
the server's clock, so any number of gateway instances agree. When Redis cannot be reached the
limiter raises :class:`RateLimiterUnavailable` and the gateway refuses the request (fail closed):
an unmetered gateway is worse than a briefly unavailable one.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer for one request: allowed or not, and when to come back."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: float


class RateLimiterUnavailable(Exception):
    """The shared counter store could not be reached; the caller must refuse the request."""


class RateLimiter(Protocol):
    """Counts requests per key (the agent_id) in a sliding window."""

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        """Count one request for ``key`` if it is within ``limit`` per ``window`` seconds."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def sliding_window(
    previous: float, current: float, elapsed: float, window: float, limit: int
) -> RateDecision:
    """The sliding-window decision from the two counters (see the module docstring)."""
    estimate = previous * (window - elapsed) / window + current
    if estimate + 1 <= limit:
        return RateDecision(True, limit, max(0, math.floor(limit - estimate - 1)), 0.0)
    if current + 1 <= limit and previous > 0:
        # Wait within this window until the previous window's weight has decayed enough.
        ready_at = window - window * (limit - 1 - current) / previous
        retry = ready_at - elapsed
    else:
        # Only the next window helps: there the current count becomes the previous one.
        ready_in_next = window - window * (limit - 1) / current if current > 0 else 0.0
        retry = (window - elapsed) + max(0.0, ready_in_next)
    return RateDecision(False, limit, 0, max(retry, 0.001))


class MemoryRateLimiter:
    """Counters in this process: right for one gateway instance, lost on restart."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counters: dict[tuple[str, float], list[int]] = {}
        self._hits = 0

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        """Count one request for ``key`` (no awaits inside: atomic on the event loop)."""
        now = self._clock()
        index = math.floor(now / window)
        elapsed = now - index * window
        counters = self._counters.get((key, window))
        if counters is None or counters[0] < index - 1:
            counters = [index, 0, 0]
            self._counters[(key, window)] = counters
        elif counters[0] == index - 1:
            counters[:] = [index, counters[2], 0]
        decision = sliding_window(counters[1], counters[2], elapsed, window, limit)
        if decision.allowed:
            counters[2] += 1
        self._hits += 1
        if self._hits % 10_000 == 0:
            self._prune(now)
        return decision

    def _prune(self, now: float) -> None:
        stale = [k for k, c in self._counters.items() if c[0] < math.floor(now / k[1]) - 1]
        for k in stale:
            del self._counters[k]

    async def ping(self) -> None:
        """Always reachable."""

    async def aclose(self) -> None:
        """Nothing to release."""


# KEYS[1]: the key prefix of one agent (with a hash tag, so both windows live on one node).
# ARGV: limit, window in milliseconds. Returns {allowed, previous, current, elapsed_ms}.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local index = math.floor(now / window)
local elapsed = now - index * window
local current_key = KEYS[1] .. ':' .. index
local current = tonumber(redis.call('GET', current_key) or '0')
local previous = tonumber(redis.call('GET', KEYS[1] .. ':' .. (index - 1)) or '0')
local allowed = 0
if previous * (window - elapsed) / window + current + 1 <= limit then
  allowed = 1
  redis.call('INCR', current_key)
  redis.call('PEXPIRE', current_key, window * 2 + 1000)
end
return {allowed, previous, current, elapsed}
"""


class RedisRateLimiter:
    """Counters in Redis, shared by every gateway instance; fails closed when Redis is down."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "athkit:ratelimit",
        timeout: float = 0.5,
        client: Any | None = None,
    ) -> None:
        from redis.asyncio import Redis

        self._redis: Any = client or Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._script = self._redis.register_script(_LUA)
        self._prefix = key_prefix
        self._url = url

    def _key(self, key: str) -> str:
        # Agent ids are long, untrusted URLs: a digest keeps keys short and free of braces.
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return f"{self._prefix}:{{{digest}}}"

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        """Check and count in one atomic server-side script."""
        from redis.exceptions import RedisError

        window_ms = max(1, round(window * 1000))
        try:
            allowed, previous, current, elapsed = await self._script(
                keys=[self._key(key)], args=[limit, window_ms]
            )
        except (RedisError, OSError) as exc:
            raise RateLimiterUnavailable(
                f"Redis (rate-limit counters, {_redact(self._url)}) is unavailable "
                f"({type(exc).__name__})"
            ) from None
        if allowed:
            used = previous * (window_ms - elapsed) / window_ms + current + 1
            return RateDecision(True, limit, max(0, math.floor(limit - used)), 0.0)
        decision = sliding_window(previous, current, elapsed / 1000, window, limit)
        return RateDecision(False, limit, 0, decision.retry_after)

    async def ping(self) -> None:
        """Raise :class:`RateLimiterUnavailable` unless Redis answers."""
        from redis.exceptions import RedisError

        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise RateLimiterUnavailable(f"Redis unreachable ({type(exc).__name__})") from None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def _redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"
