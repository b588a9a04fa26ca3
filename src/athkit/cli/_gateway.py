"""``ath gateway``: validate a gateway configuration and run the gateway."""

from __future__ import annotations

from pathlib import Path

import typer

gateway_app = typer.Typer(
    name="gateway",
    help="Run an ATH gateway in front of services that know nothing of ATH.",
    no_args_is_help=True,
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


@gateway_app.command("check")
def check(config: Path = _CONFIG, dev: bool = _DEV) -> None:
    """Validate a configuration; print every problem with its key path, one per line."""
    from athkit.gateway import check_config  # imported per command: `ath` starts fast

    _, problems = check_config(config, mode="development" if dev else None)
    errors = [p for p in problems if not p.warning]
    for problem in problems:
        typer.echo(str(problem), err=not problem.warning)
    if errors:
        typer.echo(f"{config}: {len(errors)} error(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{config}: OK")


@gateway_app.command("migrate")
def migrate(
    config: Path = _CONFIG,
    check: bool = typer.Option(
        False, "--check", help="Change nothing: exit 1 unless the schema is at this release's head."
    ),
) -> None:
    """Bring the gateway's database schema to this release (Alembic, under a database lock).

    Run it before starting new instances when ``migrate_on_start = false``; safe while
    instances run. A schema from a release this one does not know is refused, never touched.
    """
    from athkit.cli._migrate import CONSOLE, SERVER, migrate_command
    from athkit.gateway import ConfigError, load_config
    from athkit.gateway._settings import database_url

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None
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
    from athkit.gateway import ConfigError, load_config, nginx_config

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None
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
