"""``ath mcp``: serve an ATH service to an LLM client as MCP tools, over stdio."""

from __future__ import annotations

from typing import Annotated, Literal, cast

import typer

from athkit.cli._agent_output import handles_errors
from athkit.cli._options import (
    AgentOpt,
    HeaderOpt,
    KeyOpt,
    ModeOpt,
    ProviderOpt,
    ServerOpt,
    Setup,
    developer_of,
    parse_headers,
    scopes_of,
)


@handles_errors()
def mcp(
    server: ServerOpt = None,
    mode: ModeOpt = None,
    agent_id: AgentOpt = None,
    key: KeyOpt = None,
    provider: ProviderOpt = None,
    route: Annotated[
        list[str] | None,
        typer.Option(
            "--route",
            "-r",
            help="A tool for an API route: 'NAME METHOD /path SCOPE', the scope optional "
            "(repeatable).",
        ),
    ] = None,
    mcp_path: Annotated[
        str | None,
        typer.Option(
            "--mcp",
            help="Also offer the tools of the service's MCP endpoint at this path (e.g. /mcp).",
        ),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Scopes ath_authorize asks for (repeatable or a,b)."),
    ] = None,
    header: HeaderOpt = None,
) -> None:
    """Serve the ATH service as MCP tools on stdin/stdout (for an LLM client's config).

    Tools: ath_status, ath_authorize (answers the consent link for the person), one per --route
    the token allows, and with --mcp the service's own MCP tools the token allows.
    """
    import importlib.util

    if importlib.util.find_spec("mcp") is None:
        raise ValueError("ath mcp needs the mcp extra: pip install 'athkit[mcp]'")

    import anyio

    from athkit.agent import AsyncATHClient, CredentialStore
    from athkit.agent._core import Mode
    from athkit.integrations.mcp._bridge import Bridge, RouteTool, serve_stdio

    setup = Setup.load()
    routes = [RouteTool.parse(text) for text in route or []]
    if mcp_path is not None and not mcp_path.startswith("/"):
        raise ValueError("--mcp takes a path such as /mcp")
    url, configured_mode = setup.config.resolve_server(server)
    chosen = mode or configured_mode
    if chosen not in ("auto", "gateway", "native"):
        raise ValueError(f"--mode must be auto, gateway or native, not {chosen!r}")
    client = AsyncATHClient(
        url,
        agent_id=setup.agent_id(agent_id),
        private_key=setup.key(key),
        mode=cast(Mode | Literal["auto"], chosen),
        store=CredentialStore(setup.directory),
        headers={**setup.config.server_headers(server), **parse_headers(header)},
    )
    bridge = Bridge(
        client,
        provider_id=provider,
        routes=routes,
        mcp_path=mcp_path,
        scopes=scopes_of(scope),
        developer=developer_of(setup, None, None),
    )
    anyio.run(serve_stdio, bridge)


def register_commands(app: typer.Typer) -> None:
    """Add ``ath mcp`` to the ``ath`` app."""
    app.command("mcp")(mcp)
