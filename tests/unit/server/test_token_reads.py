"""The SQL token store's fast reads see every committed revocation, from any process, at once;
when the fast path cannot read, the SQLAlchemy store answers instead."""

from __future__ import annotations

import secrets
import sqlite3
import time
from pathlib import Path

import pytest

from athkit.protocol import hash_secret
from athkit.server import SqlTokenStore, TokenRecord, migrate_server_schema
from athkit.server._tokenread import (
    FastPathUnavailable,
    PostgresTokenReader,
    SqliteTokenReader,
    token_reader,
)
from athkit.storage import create_database


def _token(secret: str) -> TokenRecord:
    now = time.time()
    return TokenRecord(
        token_id=f"tok_{secrets.token_hex(4)}",
        token_hash=hash_secret(secret),
        client_id="ath_client",
        agent_id="https://agent.example/agent.json",
        user_id="alice",
        provider_id="shop",
        scopes=["orders:read", "cart:write"],
        created_at=now,
        expires_at=now + 3600,
        grant_id="grant-1",
    )


async def test_revocation_by_another_instance_is_seen_on_the_next_read(database_url: str) -> None:
    # Two engines on one database stand for two processes (gateway instances, or a native
    # service and its admin): one revokes, the other's very next read sees it.
    reading, writing = create_database(database_url), create_database(database_url)
    try:
        await migrate_server_schema(writing)
        reader_store, writer_store = SqlTokenStore(reading), SqlTokenStore(writing)
        assert isinstance(token_reader(reading), SqliteTokenReader | PostgresTokenReader)
        record = _token("ath_at_secret-one")
        assert await reader_store.get_by_hash(record.token_hash) is None
        await writer_store.insert(record)
        for _ in range(3):  # warm: the fast path has its connection open and its statement
            found = await reader_store.get_by_hash(record.token_hash)
            assert found is not None and found.revoked_at is None
        assert found.scopes == ["orders:read", "cart:write"]
        assert found == record

        assert await writer_store.revoke(record.token_id, time.time(), "operator")
        found = await reader_store.get_by_hash(record.token_hash)
        assert found is not None and found.revoked_at is not None
        assert found.revoked_by == "operator"

        second = _token("ath_at_secret-two")
        await writer_store.insert(second)
        assert await writer_store.revoke_matching(time.time(), "suspended", client_id="ath_client")
        found = await reader_store.get_by_hash(second.token_hash)
        assert found is not None and found.revoked_by == "suspended"
    finally:
        await reading.dispose()
        await writing.dispose()


async def test_sqlite_fast_path_failure_falls_back_to_the_store(tmp_path: Path) -> None:
    path = tmp_path / "ath.db"
    db = create_database(f"sqlite:///{path}")
    try:
        await migrate_server_schema(db)
        store = SqlTokenStore(db)
        record = _token("ath_at_secret-three")
        await store.insert(record)

        missing = SqliteTokenReader(tmp_path / "missing.db")
        with pytest.raises(FastPathUnavailable):
            await missing.get_by_hash(record.token_hash)
        # A reader that cannot read (here: a file that is not a database) is skipped for a
        # moment and the SQLAlchemy store answers, so the caller still gets the row.
        (tmp_path / "garbage.db").write_bytes(b"not a database" * 100)
        store._reader = SqliteTokenReader(tmp_path / "garbage.db")
        assert await store.get_by_hash(record.token_hash) == record
        with pytest.raises(FastPathUnavailable):
            await store._reader.get_by_hash(record.token_hash)  # in its back-off second
    finally:
        await db.dispose()


async def test_sqlite_reader_never_waits_on_a_writer(tmp_path: Path) -> None:
    # WAL: a transaction holding the write lock does not stop the read (nor does the read wait
    # the writer's busy timeout on the event loop); it sees the last committed row.
    path = tmp_path / "ath.db"
    db = create_database(f"sqlite:///{path}")
    try:
        await migrate_server_schema(db)
        store = SqlTokenStore(db)
        record = _token("ath_at_secret-four")
        await store.insert(record)
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE ath_tokens SET revoked_at = 1, revoked_by = 'operator'")
        reader = SqliteTokenReader(path)
        started = time.perf_counter()
        found = await reader.get_by_hash(record.token_hash)
        assert time.perf_counter() - started < 1.0
        assert found is not None and found.revoked_at is None  # not committed yet
        writer.execute("COMMIT")
        found = await reader.get_by_hash(record.token_hash)
        assert found is not None and found.revoked_by == "operator"
        writer.close()
        reader.close()
    finally:
        await db.dispose()


def test_the_fast_reads_select_the_record_fields_in_their_order() -> None:
    # The readers build a TokenRecord positionally from the row: a column added to the record
    # but not to the SELECT (or in another order) must fail here, not mislabel a field.
    import dataclasses

    from athkit.server._tokenread import _COLUMNS

    assert tuple(f.name for f in dataclasses.fields(TokenRecord)) == _COLUMNS
