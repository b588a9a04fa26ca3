"""The ``ath`` command line."""

from __future__ import annotations

import typer

from athkit import __version__

__all__ = ["app", "main", "version"]

app = typer.Typer(
    name="ath",
    help="athkit: the Agent Trust Handshake (ATH 0.1) for agents, services and gateways.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print the athkit version."""
    typer.echo(__version__)


def _register_subcommands() -> None:
    # Each area of the CLI lives in its own module and adds its commands here.
    from athkit.cli._gateway import gateway_app

    app.add_typer(gateway_app)

    from athkit.cli._console import register as register_console

    register_console(app)

    from athkit.cli._agent import register_agent_commands

    register_agent_commands(app)

    from athkit.cli._oauth import oauth_app

    app.add_typer(oauth_app)

    from athkit.cli._migrate import native_app

    app.add_typer(native_app)

    from athkit.cli._demo import register as register_demo

    register_demo(app)

    from athkit.cli._conformance import register as register_conformance

    register_conformance(app)

    from athkit.cli._mcp import register as register_mcp

    register_mcp(app)


_register_subcommands()


def main() -> None:
    """Entry point of the ``ath`` console script."""
    app()
