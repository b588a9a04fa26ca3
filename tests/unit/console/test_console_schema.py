"""The console's Alembic migration creates exactly the tables it declares (SQLite and
PostgreSQL), and a console whose database is down fails closed with a page, never a trace."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from athkit.console import ConsoleStore, mount_console
from athkit.console._tables import metadata
from athkit.server import ServerSettings, create_native_app, memory_stores
from athkit.storage import create_database
from athkit.testing import free_port

PG = "postgresql://postgres@127.0.0.1:5432"


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    found = list(compare_metadata(context, metadata))
    # The version table is Alembic's own, not declared by the console.
    return [d for d in found if not (d[0] == "remove_table" and "alembic" in d[1].name)]


async def _check(url: str) -> None:
    engine = create_database(url)
    try:
        store = ConsoleStore(engine, time.time)
        await store.migrate()
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
        # And it works there: an account, a wrong and a right password, a session.
        await store.create_operator("https://a.example", "ops", "a long passphrase")
        assert not await store.check_password("https://b.example", "ops", "a long passphrase")
        assert await store.check_password("https://a.example", "ops", "a long passphrase")
        for _ in range(2):
            await store.record_failure("https://a.example", "ops", 60)
        assert await store.recent_failures("https://a.example", "ops", 60) == 2
        # Failures at the same moment all count (they race to begin the name's window).
        await asyncio.gather(
            *(store.record_failure("https://a.example", "x", 60) for _ in range(8))
        )
        assert await store.recent_failures("https://a.example", "x", 60) == 8
        cookie, _ = await store.start_session("https://a.example", "operator", "ops", 60)
        assert await store.load_session("https://a.example", "operator", cookie) is not None
        assert await store.load_session("https://b.example", "operator", cookie) is None
        assert await store.load_session("https://a.example", "user", cookie) is None
    finally:
        await engine.dispose()


async def test_sqlite_schema_matches(tmp_path: Path) -> None:
    await _check(f"sqlite:///{tmp_path / 'console.db'}")


@pytest.mark.postgres
async def test_postgresql_schema_matches() -> None:
    import asyncpg

    try:
        admin = await asyncpg.connect(f"{PG}/test", timeout=3)
    except Exception as exc:
        if os.environ.get("ATH_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"ath_console_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await _check(f"{PG}/{name}")
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_console_whose_database_is_down_fails_closed() -> None:
    # PostgreSQL on a loopback port nobody listens on.
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    app = create_native_app(
        ServerSettings(base_url="http://127.0.0.1:9", secret_key="d" * 40),
        stores=memory_stores(),
    )
    console = mount_console(app, database_url=dead)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as http:
        cookie = {"cookie": f"{console.operators.cookie.name}=some-session"}
        page = await http.get("/admin/agents", headers=cookie)
        assert page.status_code == 503 and "nothing was changed" in page.text
        form = await http.get("/admin/login")
        assert form.status_code == 200
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        posted = await http.post(
            "/admin/login",
            data={"csrf": token, "username": "ops", "password": "a long passphrase"},
        )
        assert posted.status_code == 503 and "Traceback" not in posted.text
        assert not any(c.startswith("ath_console_") and "login" not in c for c in http.cookies)


def test_with_stores_handed_in_the_console_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    monkeypatch.chdir(tmp_path)
    app = create_native_app(
        ServerSettings(base_url="http://127.0.0.1:9", secret_key="d" * 40),  # sqlite:///ath.db
        stores=memory_stores(),
    )
    mount_console(app)
    with TestClient(app, base_url="http://127.0.0.1:9") as client:
        assert client.get("/admin/login").status_code == 200
    assert list(tmp_path.iterdir()) == []


def test_processes_migrating_one_fresh_sqlite_file_at_once_all_start(tmp_path: Path) -> None:
    # Two gateway workers start together on a new database: both must end up running.
    import subprocess
    import sys

    script = (
        "import asyncio, sys, time\n"
        "from athkit.console import ConsoleStore\n"
        "from athkit.storage import create_database\n"
        "async def main():\n"
        "    db = create_database(sys.argv[1])\n"
        "    await ConsoleStore(db, time.time).migrate()\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
    )
    url = f"sqlite:///{tmp_path / 'race.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", script, url]) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
