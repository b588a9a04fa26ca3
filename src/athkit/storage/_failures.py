"""The count behind a brake on password guessing, one implementation for the console and the
OAuth server: failed sign-ins per name, in a table of the component's own whose key columns name
the account and whose :func:`~athkit.storage._metadata.failure_window` columns hold the count
and when its window began. What a count refuses, and what the refusal says, stays with each
component.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import ColumnElement, Table, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine


class FailedSignIns:
    """Failed sign-ins counted in ``table``, per key (``{column: value}`` for its key columns).

    A window begins with a failure and lasts ``window`` seconds; failures inside it add up, the
    first one after it begins the next. Concurrent failures of one name all count, on SQLite
    and on PostgreSQL alike.
    """

    def __init__(self, db: AsyncEngine, table: Table) -> None:
        self._db = db
        self._table = table

    def _match(self, key: Mapping[str, str]) -> ColumnElement[bool]:
        return and_(*(self._table.c[column] == value for column, value in key.items()))

    async def count(self, key: Mapping[str, str], *, now: float, window: float) -> int:
        """The failures of ``key`` in its window still open at ``now`` (0 if none is)."""
        t = self._table
        async with self._db.connect() as conn:
            row = (
                await conn.execute(select(t.c.failures, t.c.window_start).where(self._match(key)))
            ).one_or_none()
        if row is None or row.window_start <= now - window:
            return 0
        return int(row.failures)

    async def record(self, key: Mapping[str, str], *, now: float, window: float) -> None:
        """Count one failure of ``key``: in its open window, or as the first of a new one."""
        t, match = self._table, self._match(key)
        async with self._db.begin() as conn:
            counted = await conn.execute(
                update(t)
                .where(match, t.c.window_start > now - window)
                .values(failures=t.c.failures + 1)
            )
            if counted.rowcount:
                return
            # Only a window that has passed goes: a row a concurrent failure has just begun
            # stays, and the insert below then finds it.
            await conn.execute(delete(t).where(match, t.c.window_start <= now - window))
        try:
            async with self._db.begin() as conn:
                await conn.execute(insert(t).values(**key, failures=1, window_start=now))
        except IntegrityError:
            # A concurrent failure began the new window first: count this one in it.
            async with self._db.begin() as conn:
                await conn.execute(update(t).where(match).values(failures=t.c.failures + 1))

    async def clear(self, key: Mapping[str, str]) -> None:
        """Forget the failures of ``key`` (it has just signed in)."""
        async with self._db.begin() as conn:
            await conn.execute(delete(self._table).where(self._match(key)))
