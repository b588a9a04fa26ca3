"""``ath demo``: the end-to-end demonstration of ATH."""

from __future__ import annotations

import importlib.util

import typer


def demo(
    json_output: bool = typer.Option(
        False, "--json", help="Print one JSON object per step and a summary, not prose."
    ),
    browser: bool = typer.Option(
        False, "--browser", help="Open a real browser for the consent step and wait for you."
    ),
    serve: bool = typer.Option(
        False, "--serve", help="Keep everything running afterwards for you to explore."
    ),
    gateway: bool = typer.Option(
        False, "--gateway", help="The same story in gateway mode (Example Mail behind a gateway)."
    ),
    mcp: bool = typer.Option(
        False, "--mcp", help="ShopBot as an MCP client of the shop's MCP tools (athkit[mcp])."
    ),
) -> None:
    """Run the ATH Shop demo with real servers and real cryptography on 127.0.0.1."""
    if gateway and mcp:
        typer.echo("ath demo: choose --gateway or --mcp, not both", err=True)
        raise typer.Exit(2)
    if mcp and importlib.util.find_spec("mcp") is None:
        typer.echo("ath demo --mcp needs the mcp extra: pip install 'athkit[mcp]'", err=True)
        raise typer.Exit(2)
    from athkit.demo import DemoOptions, run_demo  # imported per command: `ath` starts fast

    summary = run_demo(
        DemoOptions(json=json_output, browser=browser, serve=serve, gateway=gateway, mcp=mcp)
    )
    raise typer.Exit(0 if summary.ok else 1)


def register_commands(app: typer.Typer) -> None:
    """Add ``ath demo`` to the CLI."""
    app.command(name="demo")(demo)
