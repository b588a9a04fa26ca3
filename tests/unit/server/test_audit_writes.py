"""Batches of audit events go through the database's fast writer and read back exactly as the
SQLAlchemy store writes them; when the fast writer cannot write, the store still stores them."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from athkit.server import AuditEvent, AuditQuery, migrate_server_schema
from athkit.server._auditwrite import PostgresAuditWriter, SqliteAuditWriter
from athkit.server._fastpath import FastPathUnavailable
from athkit.server._sql import SqlAuditStore
from athkit.storage import create_database
from tests.unit.server.conftest import _pg_connect, pg_database


def _events(tag: str, now: float | None = None) -> list[AuditEvent]:
    now = time.time() if now is None else now
    return [
        AuditEvent(
            event="proxy_request",
            timestamp=now + i / 1000,
            agent_id="https://agent.example/agent.json",
            client_id="ath_client",
            user_id="alice",
            provider_id="mail",
            effective_scopes=["mail:read"],
            details={"method": "GET", "path": f"/messages/{tag}/{i}", "status": 200},
        )
        for i in range(5)
    ] + [
        # What a hostile client sends is recorded, not refused: NUL becomes U+FFFD.
        AuditEvent(
            event="access_denied",
            timestamp=now + 1,
            agent_id="https://agent.example/\x00evil",
            requested_scopes=["mail:read", "ünïcode"],
            denied_scopes=["mail:send"],
            reason="scope_violation \x00",
            code="SCOPE_NOT_APPROVED",
            details={
                "path": f"/x/{tag}",
                "nested": {"k\x00": ["v", 1, None, True]},
                "literal": "\\u0000 is six characters, not NUL",
            },
        )
    ]


def _stored(events: list[AuditEvent], tag: str) -> list[dict[str, object]]:
    """The events as stored, in order, with the tag in their paths made neutral."""
    rows = []
    for event in sorted(events, key=lambda e: e.timestamp):
        row = event.to_json()
        row.pop("event_id")
        row["details"] = {**row["details"], "path": row["details"]["path"].replace(tag, "T")}
        rows.append(row)
    return rows


async def test_fast_batches_read_back_as_the_store_writes_them(database_url: str) -> None:
    db = create_database(database_url)
    try:
        await migrate_server_schema(db)
        store = SqlAuditStore(db)
        assert isinstance(store._writer, SqliteAuditWriter | PostgresAuditWriter)
        now = time.time()
        fast, slow = _events("fast", now), _events("slow", now)
        await store.append_many(fast)  # the fast writer
        for event in slow:
            await store.append(event)  # SQLAlchemy, one by one
        stored = await store.query(AuditQuery(limit=100))
        assert len(stored) == 12
        by_tag = {
            tag: [e for e in stored if f"/{tag}" in str(e.details.get("path"))]
            for tag in ("fast", "slow")
        }
        assert _stored(by_tag["fast"], "fast") == _stored(by_tag["slow"], "slow")
        denied = next(e for e in by_tag["fast"] if e.event == "access_denied")
        assert denied.agent_id == "https://agent.example/\ufffdevil"
        assert denied.requested_scopes == ["mail:read", "ünïcode"]
        assert denied.details["nested"] == {"k\ufffd": ["v", 1, None, True]}
        assert denied.details["literal"] == "\\u0000 is six characters, not NUL"
        assert len({e.event_id for e in stored}) == 12  # ids assigned by the database
    finally:
        await db.dispose()


async def test_sqlite_fast_write_failure_falls_back_to_the_store(tmp_path: Path) -> None:
    db = create_database(f"sqlite:///{tmp_path / 'ath.db'}")
    try:
        await migrate_server_schema(db)
        store = SqlAuditStore(db)
        (tmp_path / "garbage.db").write_bytes(b"not a database" * 100)
        store._writer = broken = SqliteAuditWriter(tmp_path / "garbage.db")
        await store.append_many(_events("one"))
        assert len(await store.query(AuditQuery(limit=100))) == 6
        with pytest.raises(FastPathUnavailable):
            await broken.write(_events("two"))  # skipped during its back-off second
        broken.close()
    finally:
        await db.dispose()


async def test_sqlite_fast_write_waits_for_the_lock_off_the_event_loop(tmp_path: Path) -> None:
    # Another process holds the write lock for a while: the batch waits for it on the writer's
    # thread, the event loop keeps running, and nothing is lost.
    path = tmp_path / "ath.db"
    db = create_database(f"sqlite:///{path}")
    try:
        await migrate_server_schema(db)
        store = SqlAuditStore(db)
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
        release.start()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        started = time.perf_counter()
        await store.append_many(_events("locked"))
        waited = time.perf_counter() - started
        ticker.cancel()
        release.join()
        holder.close()
        assert waited >= 0.4
        assert ticks >= 20  # the loop was free while the batch waited
        assert len(await store.query(AuditQuery(limit=100))) == 6
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_postgres_fast_writer_recovers_from_a_dropped_connection() -> None:
    async with pg_database("ath_audit") as database_url:
        await _recovers_from_a_dropped_connection(database_url)


async def _recovers_from_a_dropped_connection(database_url: str) -> None:
    db = create_database(database_url)
    try:
        await migrate_server_schema(db)
        store = SqlAuditStore(db)
        writer = store._writer
        assert isinstance(writer, PostgresAuditWriter)
        await store.append_many(_events("first"))
        admin = await _pg_connect(database_url.rsplit("/", 1)[1])
        pid = writer._conn.get_server_pid()
        await admin.execute("SELECT pg_terminate_backend($1)", pid)  # type: ignore[attr-defined]
        await admin.close()  # type: ignore[attr-defined]
        await asyncio.sleep(0.1)
        await store.append_many(_events("second"))  # the fast path fails; SQLAlchemy stores it
        writer._backoff.succeeded()  # the back-off second is over
        await store.append_many(_events("third"))  # a new connection of its own
        assert writer._conn is not None and writer._conn.get_server_pid() != pid
        assert len(await store.query(AuditQuery(limit=100))) == 18
    finally:
        await db.dispose()


async def test_sqlite_batches_keep_the_wal_checkpointed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loop's connection never checkpoints (that writes and syncs the database file); the
    # writer's thread does once the WAL passes its bound, so the WAL does not grow without end.
    monkeypatch.setattr("athkit.server._auditwrite.CHECKPOINT_BYTES", 64 * 1024)
    path = tmp_path / "ath.db"
    db = create_database(f"sqlite:///{path}")
    try:
        await migrate_server_schema(db)
        store = SqlAuditStore(db)
        writer = store._writer
        assert isinstance(writer, SqliteAuditWriter)
        for batch in range(300):
            await store.append_many(_events(f"b{batch}") * 4)
            await asyncio.sleep(0.002)  # the thread's checkpoint runs beside the loop
        assert writer._conn is not None  # the thread checkpointed
        wal, count = _wal_size_and_rows(path)
        assert wal < 1024 * 1024, wal  # without checkpoints: several MB
        assert count == 300 * 24
    finally:
        await db.dispose()


def _wal_size_and_rows(path: Path) -> tuple[int, int]:
    wal = Path(f"{path}-wal").stat().st_size
    conn = sqlite3.connect(path)
    (count,) = conn.execute("SELECT COUNT(*) FROM ath_audit_events").fetchone()
    conn.close()
    return wal, int(count)
