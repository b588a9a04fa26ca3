"""``ath gateway``: validate a gateway configuration and run the gateway."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from athkit.cli._options import CHECK_OPT, command_group

if TYPE_CHECKING:
    from athkit.config import Problem

if TYPE_CHECKING:
    from athkit.gateway import GatewayConfig


def load_or_exit(config: Path) -> GatewayConfig:
    """The gateway configuration in ``config``; else its problems on stderr and exit 1."""
    from athkit.gateway import ConfigError, load_config

    try:
        return load_config(config)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None


def ask_secret(label: str, *, from_stdin: bool) -> str:
    """A password or secret: one line of standard input, or prompted for (hidden, twice)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt(label, hide_input=True, confirmation_prompt=True))


gateway_app = command_group(
    "gateway", "Run an ATH gateway in front of services that know nothing of ATH."
)

_CONFIG = typer.Option(
    ...,
    "--config",
    "-c",
    envvar="ATH_GATEWAY_CONFIG",
    help="The gateway.toml file (keys overridable by ATH_GATEWAY__... variables).",
)
_DEV = typer.Option(
    False,
    "--dev",
    help="Development mode: generate a secret key if none is configured. Never in production.",
)


_OFFLINE = typer.Option(
    False, "--offline", help="Do not fetch the providers' issuer metadata (RFC 8414)."
)


@gateway_app.command("check")
def check(config: Path = _CONFIG, dev: bool = _DEV, offline: bool = _OFFLINE) -> None:
    """Validate a configuration; print every problem with its key path, one per line.

    Each provider's issuer metadata is fetched as ``serve`` would (unless ``--offline``).
    """
    from athkit.gateway import check_config  # imported per command: `ath` starts fast
    from athkit.gateway._settings import probe_issuers

    loaded, problems = check_config(config, mode="development" if dev else None)
    notes: list[str] = []
    if loaded is not None:
        with_issuer = [p for p, provider in loaded.providers.items() if provider.issuer]
        if offline and with_issuer:
            notes.append(f"note: issuer metadata not probed (--offline): {', '.join(with_issuer)}")
        elif with_issuer:
            read, failed = probe_issuers(loaded)
            notes.extend(f"ok: {path}: {what}" for path, what in read)
            problems = [*problems, *failed]
    print_problems(problems, notes)
    errors = [p for p in problems if not p.warning]
    if errors:
        typer.echo(f"{config}: {len(errors)} error(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{config}: OK")


def print_problems(problems: Sequence[Problem], notes: Sequence[str] = ()) -> None:
    """One line per problem (errors on stderr), then the notes: the format of every ``check``."""
    for problem in problems:
        typer.echo(str(problem), err=not problem.warning)
    for note in notes:
        typer.echo(note)


@gateway_app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write (created).")] = Path(
        "ath-gateway"
    ),
    port: int = typer.Option(8080, "--port", help="The gateway's port."),
    oauth_port: int = typer.Option(8400, "--oauth-port", help="The OAuth server's port."),
    upstream_port: int = typer.Option(8500, "--upstream-port", help="The Notes API's port."),
) -> None:
    """Write a working gateway, its OAuth server and a tiny API to run it against.

    Secrets are generated into DIRECTORY/secrets/ (mode 0600); nothing is overwritten.
    """
    from athkit.cli._quickstart import QuickStart, next_steps, write_quickstart

    setup = QuickStart(gateway_port=port, oauth_port=oauth_port, upstream_port=upstream_port)
    try:
        password = write_quickstart(directory, setup)
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(next_steps(directory, setup, password))


@gateway_app.command("consent-key")
def consent_key(
    config: Path = _CONFIG,
    generate: bool = typer.Option(
        False, "--generate", help="Create consent_signing_key_file (mode 0600) if it is missing."
    ),
    jwk: bool = typer.Option(False, "--jwk", help="Print the public key as a JWK (JSON)."),
) -> None:
    """Print the public half of the consent signing key, for each provider's OAuth server
    (its client's ``ath_context_key``). Without it the consent page cannot name the agent."""
    import json
    import os

    from athkit.config import resolve_path
    from athkit.gateway import check_config
    from athkit.protocol import (
        generate_private_key,
        load_private_key,
        private_key_to_pem,
        public_key_to_jwk,
        public_key_to_pem,
    )

    loaded, problems = check_config(config)
    if loaded is None:
        print_problems(problems)
        raise typer.Exit(1)
    if loaded.consent_signing_key_file is None:
        typer.echo(
            f"error: {config} sets no consent_signing_key_file: add for example\n"
            '  consent_signing_key_file = "consent-key.pem"\n'
            f"then run: ath gateway consent-key --generate --config {config}",
            err=True,
        )
        raise typer.Exit(2)
    path = resolve_path(loaded.consent_signing_key_file, loaded.base_dir)
    if not path.exists():
        if not generate:
            typer.echo(f"error: {path} does not exist; add --generate to create it", err=True)
            raise typer.Exit(2)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(private_key_to_pem(generate_private_key()))
        typer.echo(f"wrote {path} (mode 0600)", err=True)
    try:
        key = load_private_key(path)
    except Exception as exc:
        typer.echo(f"error: {path}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(public_key_to_jwk(key), indent=2) if jwk else public_key_to_pem(key))


@gateway_app.command("migrate")
def migrate(
    config: Path = _CONFIG,
    check: bool = CHECK_OPT,
) -> None:
    """Bring the gateway's database schema to this release (Alembic, under a database lock).

    Run it before starting new instances when ``migrate_on_start = false``; safe while
    instances run. A schema from a release this one does not know is refused, never touched.
    """
    from athkit.cli._migrate import CONSOLE, SERVER, migrate_command
    from athkit.gateway._settings import database_url

    loaded = load_or_exit(config)
    if loaded.database_url.startswith("memory:"):
        typer.echo(f"{config}: memory:// stores have no schema to migrate", err=True)
        raise typer.Exit(1)
    migrate_command(database_url(loaded), SERVER, check=check)
    if loaded.console.enabled:
        migrate_command(database_url(loaded), CONSOLE, check=check)


@gateway_app.command("serve")
def serve(
    config: Path = _CONFIG,
    dev: bool = _DEV,
    access_log: bool = typer.Option(False, "--access-log", help="Log every request (slower)."),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="Worker processes sharing the listening socket and the stores (one per core); "
        "more than 1 needs a shared database and a redis_url (shared rate limits).",
    ),
) -> None:
    """Run the gateway on the configured listen address (uvicorn, uvloop, httptools)."""
    import logging

    from athkit.gateway import ConfigError, create_gateway_app, load_config
    from athkit.gateway._serve import serve_gateway, workers_problem

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        loaded = load_config(config, mode="development" if dev else None)
        problem = workers_problem(loaded, workers)
        if problem is not None:
            typer.echo(f"{config}: {problem}", err=True)
            raise typer.Exit(2)
        app = create_gateway_app(loaded)
    except ConfigError as exc:
        for each in exc.problems:
            typer.echo(str(each), err=True)
        typer.echo(f"{config}: the gateway did not start", err=True)
        raise typer.Exit(1) from None
    if dev:
        typer.secho(
            "WARNING: development mode (--dev). Never expose this gateway to real users.",
            fg=typer.colors.RED,
            err=True,
        )
    serve_gateway(loaded, config, app=app, workers=workers, access_log=access_log)


_OUTPUT = typer.Option(
    None, "--output", "-o", help="Write to this file (mode 0600) instead of stdout."
)


@gateway_app.command("nginx-config")
def nginx_config_command(
    config: Path = _CONFIG,
    listen: str = typer.Option(
        "80", "--listen", help="nginx's listen argument (e.g. '443 ssl', '127.0.0.1:8080')."
    ),
    server_name: str | None = typer.Option(
        None, "--server-name", help="Default: the host of public_base_url."
    ),
    athkit: str | None = typer.Option(
        None, "--athkit", help="Where athkit listens, HOST:PORT (default: the config's listen)."
    ),
    output: Path | None = _OUTPUT,
) -> None:
    """Print an nginx configuration that forwards agent calls and lets athkit decide each one.

    It goes in nginx's http context (conf.d/). It holds the [forward_auth] shared secret, so
    keep the file readable by root only.
    """
    import os

    from athkit.config import read_secret
    from athkit.gateway import nginx_config

    loaded = load_or_exit(config)
    forward = loaded.forward_auth
    secret = read_secret(forward.secret_env, forward.secret_file, os.environ, loaded.base_dir)
    if secret is None:
        typer.echo(
            "error: forward_auth: set forward_auth.secret_env or forward_auth.secret_file "
            "(the shared secret nginx sends to /ath/check; at least 32 characters)",
            err=True,
        )
        raise typer.Exit(1)
    try:
        text = nginx_config(loaded, secret, listen=listen, server_name=server_name, athkit=athkit)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if output is None:
        typer.echo(text, nl=False)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(output, 0o600)
    typer.echo(f"wrote {output} (mode 0600: it holds the forward-auth secret)", err=True)


def register_commands(app: typer.Typer) -> None:
    """Add the ``gateway`` group to the ``ath`` app."""
    app.add_typer(gateway_app)
