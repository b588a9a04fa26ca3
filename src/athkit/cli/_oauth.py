"""``ath oauth``: run the OAuth 2.0 authorization server and make hashes for its config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from athkit.oauthserver import OAuthServerConfig

from athkit.cli._gateway import print_problems

oauth_app = typer.Typer(
    name="oauth",
    help="Run athkit's OAuth 2.0 authorization server (login, consent, tokens).",
    no_args_is_help=True,
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
    check: bool = typer.Option(
        False, "--check", help="Change nothing: exit 1 unless the schema is at this release's head."
    ),
) -> None:
    """Bring the OAuth server's database schema to this release (Alembic, under a lock)."""
    from athkit.cli._migrate import OAUTH_SERVER, migrate_command

    settings = _load(config, "nothing was migrated")
    migrate_command(settings.database_url, OAUTH_SERVER, check=check)


@oauth_app.command("hash-password")
def hash_password_command(
    stdin: bool = typer.Option(
        False, "--stdin", help="Read the password from standard input instead of prompting."
    ),
) -> None:
    """Print a scrypt hash of a password, for a user's password_hash in the config file."""
    from athkit.oauthserver import hash_password

    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        typer.echo("the password is empty", err=True)
        raise typer.Exit(2)
    typer.echo(hash_password(password))


@oauth_app.command("hash-secret")
def hash_secret_command(
    stdin: bool = typer.Option(
        False, "--stdin", help="Read the secret from standard input instead of prompting."
    ),
) -> None:
    """Print the SHA-256 hash of a client secret, for client_secret_hash in the config file."""
    from athkit.protocol import hash_secret

    if stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = typer.prompt("Client secret", hide_input=True, confirmation_prompt=True)
    if len(secret) < 16:
        typer.echo("a client secret needs at least 16 characters", err=True)
        raise typer.Exit(2)
    typer.echo(hash_secret(secret))


def register_commands(app: typer.Typer) -> None:
    """Add the ``oauth`` group to the ``ath`` app."""
    app.add_typer(oauth_app)
