"""The ``ath`` command line."""

from __future__ import annotations

import importlib
import sys

import typer

from athkit import __version__

__all__ = ["app", "main", "version"]

_app = typer.Typer(
    name="ath",
    help="athkit: the Agent Trust Handshake (ATH 0.1) for agents, services and gateways.",
    no_args_is_help=True,
    add_completion=False,
)


@_app.command()
def version() -> None:
    """Print the athkit version."""
    typer.echo(__version__)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ath (athkit) {__version__}")
        raise typer.Exit()


@_app.callback()
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
# The modules a top-level group needs, where that is fewer than all: ``ath gateway serve`` runs
# the gateway in this very process (and is the supervisor of its workers), so it must not keep
# the agent SDK, the conformance suite and rich in memory for commands it does not run.
_GROUP_MODULES = {"gateway": ("_gateway", "_console")}
_registered: set[str] = set()


def _register_subcommands(names: tuple[str, ...] = _COMMAND_MODULES) -> None:
    for name in names:
        if name not in _registered:
            module = importlib.import_module(f"athkit.cli.{name}")
            module.register_commands(_app)
            _registered.add(name)


def __getattr__(name: str) -> typer.Typer:
    # ``app`` (for embedding and tests) is the whole CLI, every command registered.
    if name == "app":
        _register_subcommands()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Entry point of the ``ath`` console script."""
    group = sys.argv[1] if len(sys.argv) > 1 else ""
    _register_subcommands(_GROUP_MODULES.get(group, _COMMAND_MODULES))
    _app()
