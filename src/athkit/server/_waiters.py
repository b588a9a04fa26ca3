"""A first-come, first-served line of tasks waiting for a connection pool's slot."""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class Waiters(Generic[T]):
    """Tasks waiting their turn, each handed a value (a connection, or ``None`` for "a slot is
    free, open one") in the order they came. A waiter cancelled while in line is skipped."""

    __slots__ = ("_line",)

    def __init__(self) -> None:
        self._line: collections.deque[asyncio.Future[T]] = collections.deque()

    def __bool__(self) -> bool:
        return bool(self._line)

    def join(self) -> asyncio.Future[T]:
        """A place at the end of the line; await it for the value handed over."""
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._line.append(waiter)
        return waiter

    def hand_over(self, value: T) -> bool:
        """Give ``value`` to the first waiter still waiting; ``False`` when nobody is."""
        while self._line:
            waiter = self._line.popleft()
            if not waiter.done():
                waiter.set_result(value)
                return True
        return False

    def release_all(self, value: T) -> None:
        """Give ``value`` to every waiter (the pool is closing)."""
        while self.hand_over(value):
            pass

    def fail_all(self, error: BaseException) -> None:
        """Raise ``error`` in every waiter (the pool is gone)."""
        line, self._line = self._line, collections.deque()
        for waiter in line:
            if not waiter.done():
                waiter.set_exception(error)
