"""The line of tasks waiting for a pool slot: first come, first served; cancelled ones skipped."""

from __future__ import annotations

import asyncio

import pytest

from athkit.server._waiters import Waiters


async def test_values_go_to_waiters_in_the_order_they_came() -> None:
    waiters: Waiters[str] = Waiters()
    first, second = waiters.join(), waiters.join()
    assert waiters.hand_over("a") and waiters.hand_over("b")
    assert (await first, await second) == ("a", "b")
    assert not waiters
    assert waiters.hand_over("c") is False  # nobody waiting: the caller keeps it


async def test_a_cancelled_waiter_is_skipped() -> None:
    waiters: Waiters[int] = Waiters()
    gone, staying = waiters.join(), waiters.join()
    gone.cancel()
    assert waiters.hand_over(7)
    assert await staying == 7
    assert not waiters


async def test_closing_releases_or_fails_every_waiter() -> None:
    waiters: Waiters[None] = Waiters()
    released = [waiters.join() for _ in range(3)]
    waiters.release_all(None)
    assert await asyncio.gather(*released) == [None, None, None]
    failed = [waiters.join() for _ in range(2)]
    waiters.fail_all(ConnectionError("closed"))
    for waiter in failed:
        with pytest.raises(ConnectionError):
            await waiter
    assert not waiters
