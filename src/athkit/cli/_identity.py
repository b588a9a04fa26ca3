"""``ath keygen`` and ``ath identity``: the agent's key and its identity document."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from athkit.agent import (
    build_identity_document,
    generate_key,
    save_key,
    serve_identity,
)
from athkit.cli._agent_output import Output, handles_errors
from athkit.cli._options import (
    AgentOpt,
    JsonOpt,
    KeyOpt,
    Setup,
    developer_of,
)
from athkit.protocol import (
    key_id,
    public_key_to_jwk,
)

# --- keys and identity -----------------------------------------------------------------------


@handles_errors()
def keygen(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the key.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Create the agent's P-256 signing key (written with mode 0600)."""
    setup = Setup.load()
    path = out or setup.config.resolve_key_path(setup.directory)
    if path.exists() and not force:
        raise ValueError(
            f"{path} already exists; pass --force to replace it (servers that know the old "
            "public key will refuse the new one until the identity document is republished)"
        )
    key = generate_key()
    save_key(key, path)
    if out is not None and setup.config.key_path is None:
        setup.config.key_path = str(out.resolve())
        setup.config.save(setup.directory)
    data = {"key_path": str(path), "kid": key_id(key), "public_jwk": public_key_to_jwk(key)}

    def render(console: Console) -> None:
        console.print(f"[green]✓[/] Key written to [bold]{escape(str(path))}[/] (mode 0600)")
        console.print(f"  kid {data['kid']}")

    Output(json_output).result(data, render)


def _loopback_port(agent_id: str | None) -> int:
    if not agent_id:
        return 0
    parts = urlsplit(agent_id)
    if parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port:
        return parts.port
    return 0


@handles_errors()
def identity(
    agent_id: AgentOpt = None,
    key: KeyOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="The agent's display name.")] = None,
    developer_name: Annotated[str | None, typer.Option("--developer-name")] = None,
    developer_id: Annotated[str | None, typer.Option("--developer-id")] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve it on 127.0.0.1 until Ctrl-C (development).")
    ] = False,
    port: Annotated[int | None, typer.Option("--port", help="Port for --serve.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Print the agent's identity document, or serve it on a local port for development."""
    setup = Setup.load()
    private = setup.key(key)
    agent_name = name or setup.config.name or "ath agent"
    where = agent_id or setup.config.agent_id
    if serve and where is None:
        where = "http://127.0.0.1/"  # what --serve publishes on (the port does not matter)
    developer = developer_of(setup, developer_name, developer_id, where)
    out = Output(json_output)
    if not serve:
        document = build_identity_document(
            private, agent_id=setup.agent_id(agent_id), name=agent_name, developer=developer
        )
        out.result(document.dump(), lambda console: console.print_json(data=document.dump()))
        return
    chosen_port = port if port is not None else _loopback_port(agent_id or setup.config.agent_id)
    with serve_identity(private, name=agent_name, developer=developer, port=chosen_port) as served:
        out.result(
            {"agent_id": served, "serving": True},
            lambda console: console.print(
                f"[green]✓[/] Serving the identity document at [bold]{served}[/]\n"
                "  (Cache-Control: max-age=300; Ctrl-C to stop)"
            ),
        )
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            out.info("stopped")


def register_commands(app: typer.Typer) -> None:
    """Add these commands to the ``ath`` app."""
    for command in (keygen, identity):
        app.command(command.__name__)(command)
