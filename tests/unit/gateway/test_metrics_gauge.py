"""The active-token gauge: counted once at the first scrape, then recounted in the background at
most every GAUGE_MAX_AGE seconds — a scrape never waits for a slow count after the first."""

from __future__ import annotations

import asyncio

import pytest

from athkit.gateway import _metrics
from athkit.gateway._metrics import GAUGE_MAX_AGE, GatewayMetrics


def _gauge(body: bytes) -> float:
    for line in body.decode().splitlines():
        if line.startswith("athkit_gateway_active_tokens "):
            return float(line.split()[1])
    raise AssertionError("no gauge")


async def test_scrapes_do_not_wait_for_a_slow_recount(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(_metrics.time, "monotonic", lambda: now[0])
    metrics = GatewayMetrics(["mail"])
    counts = [5]
    release = asyncio.Event()
    calls = 0

    async def count() -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            await release.wait()  # a slow database
        return counts[-1]

    assert _gauge(await metrics.render(count)) == 5 and calls == 1
    assert _gauge(await metrics.render(count)) == 5 and calls == 1  # fresh: no count

    counts.append(7)
    now[0] += GAUGE_MAX_AGE + 1
    # Stale: a recount starts, but this scrape (and the next) answer at once with the old count.
    body = await asyncio.wait_for(metrics.render(count), 1)
    assert _gauge(body) == 5
    assert _gauge(await asyncio.wait_for(metrics.render(count), 1)) == 5
    await asyncio.sleep(0)
    assert calls == 2  # one recount, not one per scrape
    release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert _gauge(await metrics.render(count)) == 7


async def test_the_first_count_failing_raises() -> None:
    async def broken() -> int:
        raise ConnectionError("database unreachable")

    with pytest.raises(ConnectionError):
        await GatewayMetrics(["mail"]).render(broken)
