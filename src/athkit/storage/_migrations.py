"""Alembic, run programmatically, one migration folder and version table per component.

Several instances may start together on one fresh database (replicas behind a load balancer).
On PostgreSQL the upgrade therefore runs inside a transaction that first takes a transaction-level
advisory lock keyed by the component's version table (``pg_advisory_xact_lock``): the first
instance migrates, the others wait for its commit and then find the schema at head. On SQLite the
upgrade takes the database file's write lock before anything else (``BEGIN IMMEDIATE``; Python's
sqlite3 module would otherwise open a transaction only before the first INSERT, leaving the
version read and Alembic's CREATE TABLEs outside the lock), so the version read, the DDL and the
version write are one transaction holding the lock: the other instances wait for it (a busy
timeout of at least :data:`SQLITE_LOCK_WAIT` seconds) and then find the schema at head.

A database whose recorded revision this athkit does not know (migrated by a newer release, or by
something else) is never touched: :class:`SchemaError` is raised and the component refuses to
start rather than run against a schema it does not understand.

Alembic (and Mako under it, about 11 MB of a process's memory) is imported only when there is
something to do. A database already at this release's head, which is every start but the first
after an upgrade, is recognised with one ``SELECT`` of its version table against the heads read
from the migration files themselves (:func:`script_heads`, checked against Alembic's own answer
by the tests): a long-running gateway or service never loads Alembic at all.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.resources
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, column, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory


SQLITE_LOCK_WAIT = 30.0
"""Seconds a SQLite migration waits for another process's to finish (the busy timeout, as on
the connections of :func:`athkit.storage.create_database`)."""


class SchemaError(Exception):
    """The database's schema is not one this athkit can run on (unknown, or not migrated)."""


@functools.cache
def script_heads(script_location: str) -> frozenset[str] | None:
    """The head revisions of a migration folder (``"package:folder"``), read from the
    ``revision`` / ``down_revision`` assignments of its ``versions/*.py`` files without importing
    Alembic; ``None`` when a file is not of the plain kind this reader understands."""
    package, _, folder = script_location.partition(":")
    versions = importlib.resources.files(package).joinpath(folder, "versions")
    revisions: set[str] = set()
    parents: set[str] = set()
    for entry in versions.iterdir():
        if not entry.name.endswith(".py") or entry.name == "__init__.py":
            continue
        values: dict[str, object] = {}
        for node in ast.parse(entry.read_text(encoding="utf-8")).body:
            target = value = None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign):
                target, value = node.target, node.value
            names = ("revision", "down_revision", "depends_on")
            if isinstance(target, ast.Name) and target.id in names and value is not None:
                try:
                    values[target.id] = ast.literal_eval(value)
                except ValueError:
                    return None
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str) or values.get("depends_on") is not None:
            return None
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
            parents.update(down)
        elif down is not None:
            return None
    heads = frozenset(revisions - parents)
    return heads or None


async def _at_head(db: AsyncEngine, script_location: str, version_table: str) -> bool:
    """Whether the database is exactly at the folder's head, asked with one plain ``SELECT``
    (False on any doubt: no version table yet, an unreadable folder, another revision)."""
    heads = script_heads(script_location)
    if heads is None:
        return False
    versions = table(version_table, column("version_num"))
    try:
        async with db.connect() as conn:
            rows = (await conn.execute(select(versions.c.version_num))).all()
    except DBAPIError:
        return False
    return frozenset(row[0] for row in rows) == heads and len(rows) == len(heads)


def _config(script_location: str, version_table: str, connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    config.attributes["version_table"] = version_table
    return config


def _lock_key(version_table: str) -> int:
    # A stable signed 64-bit key per component (the advisory lock space is shared by every
    # application on the server, so derive it from a name rather than pick a small number).
    digest = hashlib.sha256(f"athkit-migrations:{version_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _current(connection: Connection, version_table: str) -> tuple[str, ...]:
    from alembic.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    return tuple(context.get_current_heads())


def _check_known(script: ScriptDirectory, current: tuple[str, ...], version_table: str) -> None:
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise SchemaError(
            f"the database's {version_table} is at revision {', '.join(unknown)}, which this "
            "athkit release does not know (was it migrated by a newer release?); refusing to run "
            "on it"
        )


async def run_migrations(
    db: AsyncEngine, script_location: str, version_table: str, revision: str = "head"
) -> list[str]:
    """Upgrade the database behind ``db`` to ``revision`` with the given migration folder.

    ``script_location`` is an Alembic location such as ``"athkit.oauthserver:migrations"``.
    Safe to run from several processes at once (see the module docstring). Returns the
    revisions the database was at before (empty for a fresh database). Raises
    :class:`SchemaError` for a revision this release does not know.
    """
    if revision == "head" and await _at_head(db, script_location, version_table):
        return sorted(script_heads(script_location) or ())

    def _upgrade(connection: Connection) -> list[str]:
        from alembic import command
        from alembic.script import ScriptDirectory

        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(version_table)}
            )
        elif connection.dialect.name == "sqlite":
            # No statement has run on this transaction yet, so the driver has not begun one.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        config = _config(script_location, version_table, connection)
        script = ScriptDirectory.from_config(config)
        before = _current(connection, version_table)
        _check_known(script, before, version_table)
        command.upgrade(config, revision)
        return list(before)

    if db.dialect.name != "sqlite":
        async with db.begin() as conn:
            return await conn.run_sync(_upgrade)
    async with db.connect() as conn:
        busy = await _raise_busy_timeout(conn)
        try:
            async with conn.begin():
                return await conn.run_sync(_upgrade)
        finally:
            if busy is not None:
                await conn.exec_driver_sql(f"PRAGMA busy_timeout={busy}")
                await conn.commit()


async def _raise_busy_timeout(conn: AsyncConnection) -> int | None:
    """Make the connection wait at least :data:`SQLITE_LOCK_WAIT` for the write lock; the
    timeout it had (to restore afterwards), or ``None`` when it already waited long enough."""
    wanted = int(SQLITE_LOCK_WAIT * 1000)
    busy = int((await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one())
    if busy < wanted:
        await conn.exec_driver_sql(f"PRAGMA busy_timeout={wanted}")
    await conn.commit()  # ends SQLAlchemy's autobegun transaction; the driver began none
    return busy if busy < wanted else None


async def check_schema(db: AsyncEngine, script_location: str, version_table: str) -> None:
    """Raise :class:`SchemaError` unless the database is exactly at this release's head.

    For components started with migrations switched off: they run only on a schema they know.
    """
    if await _at_head(db, script_location, version_table):
        return

    def _check(connection: Connection) -> None:
        from alembic.script import ScriptDirectory

        config = _config(script_location, version_table, connection)
        script = ScriptDirectory.from_config(config)
        current = _current(connection, version_table)
        _check_known(script, current, version_table)
        heads = set(script.get_heads())
        if set(current) != heads:
            at = ", ".join(current) or "an empty schema"
            raise SchemaError(
                f"the database's {version_table} is at {at}, not at this release's "
                f"{', '.join(sorted(heads))}; run the migrations first (ath gateway migrate, "
                "ath native migrate or ath oauth migrate)"
            )

    async with db.connect() as conn:
        await conn.run_sync(_check)


def run_migrations_env(context: Any, target_metadata: MetaData) -> None:
    """The body of a component's ``env.py``: migrate on the connection handed over above."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("athkit migrations run through athkit.storage.run_migrations only")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
