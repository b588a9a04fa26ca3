"""Schema migrations: replicas migrating one fresh database together all succeed (database
lock), a schema from an unknown release is refused untouched, and the migrate commands."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from athkit.cli import app
from athkit.server import check_server_schema, migrate_server_schema
from athkit.storage import SchemaError, check_schema, create_database
from tests.services import fresh_postgres_database


async def _migrate_together(url: str, replicas: int) -> list[object]:
    engines = [create_database(url) for _ in range(replicas)]
    try:
        return await asyncio.gather(
            *(migrate_server_schema(e) for e in engines), return_exceptions=True
        )
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.mark.postgres
def test_replicas_migrating_a_fresh_postgres_database_together_all_succeed() -> None:
    with fresh_postgres_database("ath_mig") as url:
        outcomes = asyncio.run(_migrate_together(url, 4))
        assert [o for o in outcomes if isinstance(o, BaseException)] == []
        # Exactly one of them found an empty database; the others waited and found it done.
        assert sorted(len(o) for o in outcomes if isinstance(o, list)) == [0, 1, 1, 1]

        async def check() -> None:
            engine = create_database(url)
            try:
                await check_server_schema(engine)
            finally:
                await engine.dispose()

        asyncio.run(check())


async def _pretend_newer_release(url: str) -> None:
    engine = create_database(url)
    try:
        await migrate_server_schema(engine)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE server_alembic_version SET version_num = 'e999'"))
    finally:
        await engine.dispose()


async def _outcome(url: str, check: bool) -> str:
    engine = create_database(url)
    try:
        await (check_server_schema(engine) if check else migrate_server_schema(engine))
    except SchemaError as exc:
        return str(exc)
    finally:
        await engine.dispose()
    return "ok"


def test_a_schema_from_an_unknown_release_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ath.db'}"
    asyncio.run(_pretend_newer_release(url))
    refused = asyncio.run(_outcome(url, check=False))
    assert "revision e999, which this athkit release does not know" in refused
    assert "e999" in asyncio.run(_outcome(url, check=True))
    result = CliRunner().invoke(app, ["native", "migrate", "--database-url", url])
    assert result.exit_code == 1 and "does not know" in result.output


def test_native_migrate_command_and_check(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'native.db'}"
    runner = CliRunner()
    before = runner.invoke(app, ["native", "migrate", "--check", "--database-url", url])
    assert before.exit_code == 1 and "run the migrations first" in before.output
    first = runner.invoke(app, ["native", "migrate", "--database-url", url])
    assert first.exit_code == 0, first.output
    assert "migrated from an empty database to this release's schema" in first.output
    again = runner.invoke(app, ["native", "migrate", "--database-url", url])
    assert again.exit_code == 0 and "nothing to do" in again.output
    after = runner.invoke(app, ["native", "migrate", "--check", "--database-url", url])
    assert after.exit_code == 0 and "is at this release's schema" in after.output
    assert asyncio.run(_outcome(url, check=True)) == "ok"


def test_native_migrate_on_an_unreachable_database_exits_2() -> None:
    from athkit.testing import free_port

    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/test"
    result = CliRunner().invoke(app, ["native", "migrate", "--database-url", url])
    assert result.exit_code == 2 and "cannot reach the database" in result.output
    assert "hunter2" not in result.output


_FOLDERS = [
    "athkit.server:migrations",
    "athkit.console:migrations",
    "athkit.oauthserver:migrations",
    "athkit.demo.shop:migrations",
]


@pytest.mark.parametrize("location", _FOLDERS)
def test_heads_read_without_alembic_are_alembics_heads(location: str) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from athkit.storage._migrations import script_heads

    config = Config()
    config.set_main_option("script_location", location)
    assert script_heads(location) == frozenset(ScriptDirectory.from_config(config).get_heads())


def test_a_schema_already_at_head_is_recognised_without_importing_alembic(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'ath.db'}"
    code = f"""
import asyncio, sys
from athkit.server import check_server_schema, migrate_server_schema
from athkit.storage import create_database
async def main():
    db = create_database({url!r})
    before = await migrate_server_schema(db)
    await check_server_schema(db)
    await db.dispose()
    print(before, "alembic" in sys.modules)
asyncio.run(main())
"""
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert first.stdout.split() == ["[]", "True"]  # a fresh database: Alembic migrates it
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert again.stdout.split()[-1] == "False"  # at head: one SELECT, no Alembic


_RACED = [
    ("athkit.server:migrations", "server_alembic_version"),
    ("athkit.console:migrations", "console_alembic_version"),
    ("athkit.oauthserver:migrations", "oauthserver_alembic_version"),
]


def _migrate_after_barrier(url: str, barrier: Any, results: Any) -> None:
    """One replica (its own OS process): for each component, wait until every replica is ready,
    then migrate the shared file at the same moment as the others."""
    import alembic.command  # noqa: F401  # loaded before the start, so the replicas really race

    from athkit.storage import run_migrations

    async def main() -> list[str]:
        db = create_database(url)
        outcomes = []
        try:
            for location, version_table in _RACED:
                barrier.wait(timeout=60)
                try:
                    before = await run_migrations(db, location, version_table)
                    outcomes.append(f"ok {len(before)}")
                except Exception as exc:
                    outcomes.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            await db.dispose()
        return outcomes

    results.put(asyncio.run(main()))


def test_processes_migrating_a_fresh_sqlite_file_together_all_succeed(tmp_path: Path) -> None:
    import multiprocessing

    # A fork server started once, with this module (and so SQLAlchemy and athkit) loaded, forks
    # the replicas: separate, clean processes that start in milliseconds (spawning 4 fresh
    # interpreters takes 10-20 s on a busy machine).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    replicas = 4
    url = f"sqlite:///{tmp_path / 'raced.db'}"
    barrier, results = context.Barrier(replicas), context.Queue()
    processes = [
        context.Process(target=_migrate_after_barrier, args=(url, barrier, results))
        for _ in range(replicas)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=90) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
    # Per component: exactly one replica found the file empty, the others waited for its commit
    # and found the schema at head.
    for index, (location, version_table) in enumerate(_RACED):
        assert sorted(o[index] for o in outcomes) == ["ok 0"] + ["ok 1"] * (replicas - 1), location

        async def check(location: str = location, version_table: str = version_table) -> None:
            db = create_database(url)
            try:
                await check_schema(db, location, version_table)
            finally:
                await db.dispose()

        asyncio.run(check())


def test_a_sqlite_migration_waits_for_the_write_lock_even_on_a_short_busy_timeout(
    tmp_path: Path,
) -> None:
    import sqlite3

    from sqlalchemy.ext.asyncio import create_async_engine

    from athkit.storage import run_migrations

    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process's write, in progress

    async def migrate() -> tuple[list[str], int]:
        # Not create_database: a plain engine whose connections give up after 0.1 s.
        db = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.1})
        try:
            asyncio.get_running_loop().call_later(1.0, holder.execute, "COMMIT")
            before = await run_migrations(db, *_RACED[0])
            async with db.connect() as conn:
                busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
            return before, busy
        finally:
            await db.dispose()

    try:
        before, busy = asyncio.run(migrate())
    finally:
        holder.close()
    assert before == []  # it waited for the lock, then migrated the empty file
    assert busy == 100  # and the connection's own timeout is back afterwards
