"""Token lookups on SQLite without a thread hop: the proxy's one database read per call.

The engine's SQL stores go through aiosqlite, which runs every statement on a worker thread;
a lookup costs several thread hand-offs (about 1 ms on a busy 2-core machine), and
``bench/proxy.py`` showed it capping the proxy at a few hundred calls per second. An indexed
``SELECT`` by primary-key-like ``token_hash`` on a local SQLite file takes tens of microseconds,
so the engine runs it synchronously on the event loop through its own read-only connection.

Nothing is cached: every call reads the committed row, so a revocation by any process sharing the
database takes effect on the next call. WAL mode (set by ``athkit.storage``) keeps readers from
waiting on writers; if the read still fails (locked, I/O), the lookup falls back to the engine's
own async store, which fails closed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from athkit.server._records import TokenRecord
from athkit.server._sql import SqlTokenStore

_log = logging.getLogger("athkit.server")

_COLUMNS = (
    "token_id",
    "token_hash",
    "client_id",
    "agent_id",
    "user_id",
    "provider_id",
    "scopes",
    "created_at",
    "expires_at",
    "grant_id",
    "session_id",
    "revoked_at",
    "revoked_by",
)
_QUERY = f"SELECT {', '.join(_COLUMNS)} FROM ath_tokens WHERE token_hash = ?"  # noqa: S608


def sqlite_file(database_url: str) -> Path | None:
    """The file behind a ``sqlite:///FILE`` URL, or ``None`` for anything else."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


class FastSqliteTokenStore:
    """The engine's ``SqlTokenStore`` with ``get_by_hash`` read synchronously (see above)."""

    def __init__(self, inner: SqlTokenStore, path: Path) -> None:
        self._inner = inner
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=50")
            conn.execute("PRAGMA query_only=ON")
            self._conn = conn
        return self._conn

    async def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        """One indexed read of the committed row; never cached."""
        try:
            row = self._connection().execute(_QUERY, (token_hash,)).fetchone()
        except sqlite3.Error as exc:
            _log.warning("fast token lookup failed (%s); using the async store", exc)
            self.close()
            return await self._inner.get_by_hash(token_hash)
        if row is None:
            return None
        values = dict(zip(_COLUMNS, row, strict=True))
        values["scopes"] = json.loads(values["scopes"])
        return TokenRecord(**values)

    def close(self) -> None:
        """Close the read connection (it reopens on the next lookup)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # Everything else is the engine's store.

    async def insert(self, token: TokenRecord) -> None:
        """Store a newly issued token."""
        await self._inner.insert(token)

    async def get(self, token_id: str) -> TokenRecord | None:
        """The token with this public id."""
        return await self._inner.get(token_id)

    async def revoke(self, token_id: str, at: float, by: str) -> bool:
        """Mark one token revoked."""
        return await self._inner.revoke(token_id, at, by)

    async def revoke_matching(
        self, at: float, by: str, *, client_id: str, user_id: str | None = None
    ) -> int:
        """Revoke every live token of ``client_id`` (optionally one user's)."""
        return await self._inner.revoke_matching(at, by, client_id=client_id, user_id=user_id)

    async def list(
        self,
        *,
        client_id: str | None = None,
        user_id: str | None = None,
        provider_id: str | None = None,
        active_at: float | None = None,
        limit: int = 100,
    ) -> list[TokenRecord]:
        """Tokens, newest first."""
        return await self._inner.list(
            client_id=client_id,
            user_id=user_id,
            provider_id=provider_id,
            active_at=active_at,
            limit=limit,
        )

    async def count_active(self, at: float) -> int:
        """How many tokens are live at ``at``."""
        return await self._inner.count_active(at)
