"""Operator accounts of the console: ``ath gateway admin ...`` and ``ath console ...``.

A gateway names its database and public URL in gateway.toml; a native service (``ath console``)
names them on the command line. Passwords are prompted for (hidden, twice) or read from standard
input with ``--password-stdin``; they are stored only as scrypt hashes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from athkit.cli._gateway import _CONFIG, ask_secret, gateway_app, load_or_exit
from athkit.cli._options import CHECK_OPT, command_group

if TYPE_CHECKING:
    from athkit.console import ConsoleStore

_T = TypeVar("_T")

admin_app = command_group("admin", "Operator accounts of the gateway's console (/admin).")
console_app = command_group(
    "console", "Operator accounts of a native service's console (mount_console)."
)

_STDIN = typer.Option(
    False, "--password-stdin", help="Read the password from standard input (one line)."
)
_DB = typer.Option(
    ..., "--database-url", help="The service's database (sqlite:///… or postgresql://…)."
)
_BASE = typer.Option(..., "--base-url", help="The service's public base URL (its deployment).")


def _password(from_stdin: bool) -> str:
    return ask_secret("Password", from_stdin=from_stdin)


def _gateway_target(config: Path) -> tuple[str, str]:
    from athkit.gateway._settings import database_url

    loaded = load_or_exit(config)
    return database_url(loaded), loaded.base_url


async def _with_store(url: str, work: Callable[[ConsoleStore], Awaitable[_T]]) -> _T:
    from athkit.console import ConsoleStore
    from athkit.storage import create_database

    db = create_database(url)
    try:
        return await work(ConsoleStore(db, time.time))
    finally:
        await db.dispose()


def _list(url: str, deployment: str) -> list[str]:
    return asyncio.run(_with_store(url, lambda store: store.list_operators(deployment)))


def _delete(url: str, deployment: str, username: str) -> None:
    gone = asyncio.run(_with_store(url, lambda store: store.delete_operator(deployment, username)))
    if not gone:
        typer.echo(f"error: no operator {username!r} at {deployment}", err=True)
        raise typer.Exit(1)
    typer.echo(f"operator {username} deleted; their sessions ended")


def _set_password(url: str, deployment: str, username: str, from_stdin: bool) -> None:
    from athkit.console import check_new_operator

    try:
        password = _password(from_stdin)
        check_new_operator(username, password)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    changed = asyncio.run(
        _with_store(url, lambda store: store.set_password(deployment, username, password))
    )
    if not changed:
        typer.echo(f"error: no operator {username!r} at {deployment}", err=True)
        raise typer.Exit(1)
    typer.echo(f"password of {username} changed; their sessions ended")


def _create_user(url: str, deployment: str, username: str, from_stdin: bool) -> None:
    from athkit.console import OperatorExists, check_new_operator

    if url.startswith("memory:"):
        typer.echo(
            "database_url is memory://: accounts would vanish; use a real database", err=True
        )
        raise typer.Exit(2)
    try:
        check_new_operator(username, "x" * 64)
        password = _password(from_stdin)
        check_new_operator(username, password)
        asyncio.run(
            _with_store(url, lambda store: store.create_operator(deployment, username, password))
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OperatorExists:
        typer.echo(f"error: operator {username!r} already exists", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"operator {username} created for {deployment} (sign in at {deployment}/admin)")


@admin_app.command("create-user")
def gateway_create_user(
    username: str = typer.Argument(..., help="The operator's sign-in name."),
    config: Path = _CONFIG,
    password_stdin: bool = _STDIN,
) -> None:
    """Create an operator account for the gateway's console."""
    url, deployment = _gateway_target(config)
    _create_user(url, deployment, username, password_stdin)


@admin_app.command("list-users")
def gateway_list_users(config: Path = _CONFIG) -> None:
    """List the operator accounts of the gateway's console."""
    url, deployment = _gateway_target(config)
    for name in _list(url, deployment):
        typer.echo(name)


@admin_app.command("delete-user")
def gateway_delete_user(
    username: str = typer.Argument(..., help="The operator's sign-in name."),
    config: Path = _CONFIG,
) -> None:
    """Delete an operator account of the gateway's console (their sessions end at once)."""
    url, deployment = _gateway_target(config)
    _delete(url, deployment, username)


@admin_app.command("set-password")
def gateway_set_password(
    username: str = typer.Argument(..., help="The operator's sign-in name."),
    config: Path = _CONFIG,
    password_stdin: bool = _STDIN,
) -> None:
    """Change an operator's password (their sessions end at once)."""
    url, deployment = _gateway_target(config)
    _set_password(url, deployment, username, password_stdin)


@console_app.command("create-user")
def native_create_user(
    username: str = typer.Argument(..., help="The operator's sign-in name."),
    database_url: str = _DB,
    base_url: str = _BASE,
    password_stdin: bool = _STDIN,
) -> None:
    """Create an operator account for a native service's console."""
    _create_user(database_url, base_url.rstrip("/"), username, password_stdin)


@console_app.command("list-users")
def native_list_users(database_url: str = _DB, base_url: str = _BASE) -> None:
    """List the operator accounts of a native service's console."""
    for name in _list(database_url, base_url.rstrip("/")):
        typer.echo(name)


@console_app.command("migrate")
def native_migrate(
    database_url: str = _DB,
    check: bool = CHECK_OPT,
) -> None:
    """Bring the console's tables to this release (Alembic, under a database lock)."""
    from athkit.cli._migrate import CONSOLE, migrate_command

    migrate_command(database_url, CONSOLE, check=check)


@console_app.command("delete-user")
def native_delete_user(
    username: str = typer.Argument(..., help="The operator's sign-in name."),
    database_url: str = _DB,
    base_url: str = _BASE,
) -> None:
    """Delete an operator account of a native service's console."""
    _delete(database_url, base_url.rstrip("/"), username)


@console_app.command("set-password")
def native_set_password(
    username: str = typer.Argument(..., help="The operator's sign-in name."),
    database_url: str = _DB,
    base_url: str = _BASE,
    password_stdin: bool = _STDIN,
) -> None:
    """Change an operator's password (their sessions end at once)."""
    _set_password(database_url, base_url.rstrip("/"), username, password_stdin)


def register_commands(app: typer.Typer) -> None:
    """Add ``ath gateway admin`` and ``ath console``."""
    gateway_app.add_typer(admin_app)
    app.add_typer(console_app)
