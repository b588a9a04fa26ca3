"""Time, injected: the engine never reads the wall clock directly, so tests can move it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, cast


class Clock(Protocol):
    """Anything that tells the current time as POSIX seconds."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    __slots__ = ()

    def now(self) -> float:
        """``time.time()``."""
        return time.time()


class ManualClock:
    """A clock that only moves when told to (for tests of expiry)."""

    __slots__ = ("_now",)

    def __init__(self, start: float | None = None) -> None:
        self._now = float(start if start is not None else time.time())

    def now(self) -> float:
        """The current fake time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self._now += seconds

    def __call__(self) -> float:
        return self._now


TimeSource = Callable[[], float]
"""A function that tells the time, e.g. ``time.time``."""

ClockLike = Clock | TimeSource
"""What every time-reading part of athkit accepts: a :class:`Clock` or a plain function."""


def time_source(clock: ClockLike) -> TimeSource:
    """The one convention for reading time: a :class:`Clock`'s ``now``, or the function itself."""
    now = getattr(clock, "now", None)
    if callable(now):
        return cast(Clock, clock).now
    return cast(TimeSource, clock)
