"""``ath oauth``: run the OAuth 2.0 authorization server and make hashes for its config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from athkit.oauthserver import OAuthServerConfig

from athkit.cli._gateway import ask_secret, print_problems
from athkit.cli._options import CHECK_OPT, command_group

oauth_app = command_group(
    "oauth", "Run athkit's OAuth 2.0 authorization server (login, consent, tokens)."
)

_CONFIG = typer.Option(
    ..., "--config", "-c", envvar="ATH_OAUTH_CONFIG", help="The server's TOML config file."
)
_HOST = typer.Option("127.0.0.1", "--host", help="Interface to listen on.")
_PORT = typer.Option(None, "--port", help="Port to listen on (default: the issuer URL's port).")


def _load(config: Path, outcome: str) -> OAuthServerConfig:
    from athkit.oauthserver import check_oauth_config

    settings, problems = check_oauth_config(config)
    if settings is None:
        print_problems([p for p in problems if not p.warning])
        typer.echo(f"{config}: {outcome}", err=True)
        raise typer.Exit(2)
    return settings


@oauth_app.command("check")
def check(config: Path = _CONFIG) -> None:
    """Validate a config file; print every problem with its key path, one per line (the
    format of ``ath gateway check``)."""
    from athkit.oauthserver import check_oauth_config

    settings, problems = check_oauth_config(config)
    print_problems(problems)
    errors = [p for p in problems if not p.warning]
    if errors or settings is None:
        typer.echo(f"{config}: {len(errors)} error(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{config}: OK")


@oauth_app.command("serve")
def serve(config: Path = _CONFIG, host: str = _HOST, port: int | None = _PORT) -> None:
    """Serve the OAuth server described by a config file until interrupted."""
    import uvicorn

    from athkit.oauthserver import create_oauth_app

    settings = _load(config, "the OAuth server did not start")
    if port is None:
        parts = urlsplit(settings.issuer)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    typer.echo(f"athkit OAuth server: {settings.issuer} (listening on {host}:{port})")
    uvicorn.run(create_oauth_app(settings), host=host, port=port, log_level="info")


@oauth_app.command("migrate")
def migrate(
    config: Path = _CONFIG,
    check: bool = CHECK_OPT,
) -> None:
    """Bring the OAuth server's database schema to this release (Alembic, under a lock)."""
    from athkit.cli._migrate import OAUTH_SERVER, migrate_command

    settings = _load(config, "nothing was migrated")
    migrate_command(settings.database_url, OAUTH_SERVER, check=check)


def _stdin_opt(what: str) -> Any:
    return typer.Option(
        False, "--stdin", help=f"Read the {what} from standard input instead of prompting."
    )


def _print_hash(value: str, problem: str | None, hasher: Callable[[str], str]) -> None:
    """Print ``hasher(value)``, unless ``problem`` says what is wrong with the value (exit 2)."""
    if problem is not None:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    typer.echo(hasher(value))


@oauth_app.command("hash-password")
def hash_password_command(stdin: bool = _stdin_opt("password")) -> None:
    """Print a scrypt hash of a password, for a user's password_hash in the config file."""
    from athkit.oauthserver import hash_password

    password = ask_secret("Password", from_stdin=stdin)
    _print_hash(password, "the password is empty" if not password else None, hash_password)


@oauth_app.command("hash-secret")
def hash_secret_command(stdin: bool = _stdin_opt("secret")) -> None:
    """Print the SHA-256 hash of a client secret, for client_secret_hash in the config file."""
    from athkit.protocol import hash_secret

    secret = ask_secret("Client secret", from_stdin=stdin)
    too_short = "a client secret needs at least 16 characters" if len(secret) < 16 else None
    _print_hash(secret, too_short, hash_secret)


def register_commands(app: typer.Typer) -> None:
    """Add the ``oauth`` group to the ``ath`` app."""
    app.add_typer(oauth_app)
