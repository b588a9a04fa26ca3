"""``ath gateway``: validate a gateway configuration and run the gateway."""

from __future__ import annotations

from pathlib import Path

import typer

from athkit.gateway import check_config

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
    _, problems = check_config(config, mode="development" if dev else None)
    errors = [p for p in problems if not p.warning]
    for problem in problems:
        typer.echo(str(problem), err=not problem.warning)
    if errors:
        typer.echo(f"{config}: {len(errors)} error(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{config}: OK")


@gateway_app.command("serve")
def serve(
    config: Path = _CONFIG,
    dev: bool = _DEV,
    access_log: bool = typer.Option(False, "--access-log", help="Log every request (slower)."),
) -> None:
    """Run the gateway on the configured listen address (uvicorn, uvloop, httptools)."""
    import logging

    import uvicorn

    from athkit.gateway import ConfigError, create_gateway_app, load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        loaded = load_config(config, mode="development" if dev else None)
        app = create_gateway_app(loaded)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{config}: the gateway did not start", err=True)
        raise typer.Exit(1) from None
    if dev:
        typer.secho(
            "WARNING: development mode (--dev). Never expose this gateway to real users.",
            fg=typer.colors.RED,
            err=True,
        )
    uvicorn.run(
        app,
        host=loaded.listen_host,
        port=loaded.listen_port,
        loop="auto",
        http="auto",
        access_log=access_log,
        proxy_headers=False,
        # The proxy returns the provider's headers unchanged: no second Date or Server.
        server_header=False,
        date_header=False,
        log_level="info",
    )
