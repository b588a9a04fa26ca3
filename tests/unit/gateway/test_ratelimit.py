"""Per-agent rate limits: the sliding-window arithmetic, the memory and the Redis limiters."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from athkit.gateway import MemoryRateLimiter, RateLimiterUnavailable, RedisRateLimiter
from athkit.server._ratelimit import sliding_window

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_sliding_window_weighs_the_previous_window() -> None:
    # 10 requests in the previous window, half-way through this one: 5 still count.
    assert sliding_window(10, 0, 30, 60, 10).allowed
    assert sliding_window(10, 4, 30, 60, 10).allowed
    denied = sliding_window(10, 5, 30, 60, 10)
    assert not denied.allowed
    # Allowed again once previous × (60 − t)/60 + 5 + 1 ≤ 10, i.e. at t = 36.
    assert denied.retry_after == pytest.approx(6.0)


def test_sliding_window_full_current_window_waits_for_the_next() -> None:
    denied = sliding_window(0, 10, 20, 60, 10)
    assert not denied.allowed
    # Next window starts in 40 s; then 10 × (60 − t)/60 + 1 ≤ 10 needs t ≥ 6.
    assert denied.retry_after == pytest.approx(46.0)


async def test_memory_limiter_trips_and_recovers() -> None:
    clock = Clock(1_000_000.0)
    limiter = MemoryRateLimiter(clock)
    results = [await limiter.hit("agent-a", 3, 10) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert results[0].remaining == 2 and results[2].remaining == 0
    assert 0 < results[3].retry_after <= 20
    # Another agent has its own budget.
    assert (await limiter.hit("agent-b", 3, 10)).allowed
    clock.now += results[3].retry_after
    assert (await limiter.hit("agent-a", 3, 10)).allowed
    # Two windows later everything is forgotten.
    clock.now += 20
    assert all([(await limiter.hit("agent-a", 3, 10)).allowed for _ in range(3)])


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(
    not _redis_up() and os.environ.get("ATH_REQUIRE_SERVICES") != "1",
    reason="Redis is not running on 127.0.0.1:6379",
)


@pytest.mark.redis
@needs_redis
async def test_redis_limiter_is_shared_between_instances() -> None:
    prefix = f"athkit-test:{uuid.uuid4().hex}"
    one = RedisRateLimiter(REDIS_URL, key_prefix=prefix)
    two = RedisRateLimiter(REDIS_URL, key_prefix=prefix)
    try:
        # 10 concurrent hits split over two "instances": exactly 5 pass (atomic script).
        hits = await asyncio.gather(
            *[(one if i % 2 else two).hit("agent", 5, 30) for i in range(10)]
        )
        assert sum(h.allowed for h in hits) == 5
        denied = [h for h in hits if not h.allowed]
        assert all(0 < h.retry_after <= 60 for h in denied)
        assert (await one.hit("other-agent", 5, 30)).allowed
    finally:
        await one.aclose()
        await two.aclose()


async def test_redis_limiter_fails_closed_when_redis_is_down() -> None:
    # A loopback port with nothing listening.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{port}/0")
    try:
        named = r"Redis \(rate-limit counters, redis://127.0.0.1:\d+\) is unavailable"
        with pytest.raises(RateLimiterUnavailable, match=named):
            await limiter.hit("agent", 5, 30)
    finally:
        await limiter.aclose()
