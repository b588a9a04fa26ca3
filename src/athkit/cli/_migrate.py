"""``ath gateway migrate``, ``ath native migrate``, ``ath oauth migrate``: run the Alembic
migrations of one component explicitly, before (or instead of) its instances doing it at start.

Safe while instances run or start: the upgrade takes a database lock (PostgreSQL advisory lock),
and a database at a revision this release does not know is refused, never touched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import typer

from athkit.cli._options import CHECK_OPT, command_group


@dataclass(frozen=True)
class Component:
    """A component's migration folder and version table."""

    label: str
    script_location: str
    version_table: str


SERVER = Component("ATH engine", "athkit.server:migrations", "server_alembic_version")
CONSOLE = Component("console", "athkit.console:migrations", "console_alembic_version")
OAUTH_SERVER = Component(
    "OAuth server", "athkit.oauthserver:migrations", "oauthserver_alembic_version"
)


def _heads(component: Component) -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", component.script_location)
    return set(ScriptDirectory.from_config(config).get_heads())


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the configured database"


async def _migrate(url: str, component: Component, check: bool) -> str:
    from athkit.storage import check_schema, create_database, run_migrations

    engine = create_database(url)
    try:
        if check:
            await check_schema(engine, component.script_location, component.version_table)
            return "is at this release's schema"
        before = await run_migrations(engine, component.script_location, component.version_table)
        await check_schema(engine, component.script_location, component.version_table)
        head = ", ".join(sorted(_heads(component)))
        if set(before) == _heads(component):
            return f"already at this release's schema ({head}); nothing to do"
        start = ", ".join(before) if before else "an empty database"
        return f"migrated from {start} to this release's schema ({head})"
    finally:
        await engine.dispose()


def migrate_command(url: str, component: Component, *, check: bool) -> None:
    """Run (or with ``check`` only verify) ``component``'s migrations on ``url``; exit 1 on
    a schema problem, 2 when the database cannot be reached."""
    from sqlalchemy.exc import SQLAlchemyError

    from athkit.storage import SchemaError

    where = _redact(url)
    try:
        outcome = asyncio.run(_migrate(url, component, check))
    except SchemaError as exc:
        typer.echo(f"{where}: {exc}", err=True)
        raise typer.Exit(1) from None
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        typer.echo(f"{where}: cannot reach the database ({type(exc).__name__})", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{where}: {component.label} {outcome}")


native_app = command_group(
    "native", "Operate the ATH engine of a native service (its database schema)."
)


@native_app.command("migrate")
def native_migrate(
    database_url: str = typer.Option(
        ...,
        "--database-url",
        envvar="ATH_DATABASE_URL",
        help="The service's ServerSettings.database_url (sqlite:///FILE, postgresql://...).",
    ),
    check: bool = CHECK_OPT,
) -> None:
    """Bring the ATH engine's tables of a native service to this release (Alembic, locked)."""
    migrate_command(database_url, SERVER, check=check)


def register_commands(app: typer.Typer) -> None:
    """Add the ``native`` group to the ``ath`` app."""
    app.add_typer(native_app)
