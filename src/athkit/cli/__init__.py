"""The ``ath`` command line."""

from __future__ import annotations

import importlib

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


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ath (athkit) {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False,
        "--version",
        "-V",
        help="Print the athkit version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """athkit: the Agent Trust Handshake (ATH 0.1) for agents, services and gateways."""


# Each area of the CLI lives in its own module, which adds its commands in one way: a
# ``register_commands(app)`` function. This order is the order of ``ath --help``.
_COMMAND_MODULES = (
    "_identity",
    "_handshake",
    "_call",
    "_config",
    "_gateway",
    "_console",
    "_oauth",
    "_migrate",
    "_demo",
    "_conformance",
    "_mcp",
)


def _register_subcommands() -> None:
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"athkit.cli.{name}")
        module.register_commands(app)


_register_subcommands()


def main() -> None:
    """Entry point of the ``ath`` console script."""
    app()
