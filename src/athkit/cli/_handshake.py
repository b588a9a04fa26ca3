"""The handshake from a terminal: ``ath discover``, ``register``, ``status``, ``authorize``,
``token`` and ``revoke``. Exit codes are listed in ``_agent_output``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from athkit.agent import (
    LOOPBACK_REDIRECT_URI,
    CredentialStore,
)
from athkit.agent import authorize_interactive as run_interactive
from athkit.cli._agent_output import EXIT_REFUSED, Output, handles_errors
from athkit.cli._options import (
    AgentOpt,
    Connection,
    HeaderOpt,
    JsonOpt,
    ModeOpt,
    ServerOpt,
    Setup,
    connects,
    developer_of,
    scope_text,
    scopes_of,
    warn_developer_mismatch,
)
from athkit.protocol import (
    AppDiscovery,
    ApprovedProvider,
    GatewayDiscovery,
    TokenResponse,
)

# --- the handshake ---------------------------------------------------------------------------


@handles_errors()
def discover(
    server: ServerOpt = None,
    mode: ModeOpt = None,
    header: HeaderOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Show what the gateway or service offers (ath.json or ath-app.json)."""
    setup = Setup.load()
    with setup.client(server, mode, None, None, anonymous=True, headers=header) as client:
        found = client.discover()
        data = {"mode": client.mode, "discovery": found.dump()}

    def render(console: Console) -> None:
        if isinstance(found, GatewayDiscovery):
            table = Table(title=f"Gateway {escape(found.gateway_id)} (ATH {found.ath_version})")
            for column in ("provider", "name", "scopes", "approval"):
                table.add_column(column)
            for p in found.supported_providers:
                table.add_row(
                    escape(p.provider_id),
                    escape(p.display_name),
                    scope_text(p.available_scopes),
                    "review" if p.agent_approval_required else "automatic",
                )
            console.print(table)
        elif isinstance(found, AppDiscovery):
            table = Table(title=f"Service {escape(found.name)} (ATH {found.ath_version})")
            table.add_column("field")
            table.add_column("value")
            table.add_row("app_id", escape(found.app_id))
            table.add_row("api_base", escape(found.api_base))
            table.add_row("scopes", scope_text(found.auth.scopes_supported))
            table.add_row("authorize", escape(found.auth.authorization_endpoint))
            table.add_row("token", escape(found.auth.token_endpoint))
            console.print(table)

    Output(json_output).result(data, render)


def _provider_table(title: str, providers: list[ApprovedProvider]) -> Table:
    table = Table(title=title)
    for column in ("provider", "approved", "denied", "reason"):
        table.add_column(column)
    for p in providers:
        table.add_row(
            escape(p.provider_id),
            f"[green]{scope_text(p.approved_scopes)}[/]",
            f"[red]{scope_text(p.denied_scopes)}[/]" if p.denied_scopes else "",
            escape(p.denial_reason or ""),
        )
    return table


_STATUS_STYLE = {"approved": "green", "pending": "yellow", "denied": "red"}


def _status_text(status: str) -> str:
    return f"[bold {_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _approval_view(
    headline: str, providers: list[ApprovedProvider], *notes: str
) -> Callable[[Console], None]:
    """Renders a registration: its headline, the approval per provider, then ``notes``."""

    def render(console: Console) -> None:
        console.print(headline)
        console.print(_provider_table("Approval", providers))
        for note in notes:
            console.print(note)

    return render


@handles_errors()
@connects
def register(
    *,
    provider: Annotated[
        list[str] | None,
        typer.Option("--provider", "-p", help="PROVIDER=scope1,scope2 (repeatable)."),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Scopes for the native service (repeatable or a,b)."),
    ] = None,
    developer_name: Annotated[str | None, typer.Option("--developer-name")] = None,
    developer_id: Annotated[str | None, typer.Option("--developer-id")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", help="Why the agent asks.")] = None,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--redirect-uri", help=f"Repeatable; default {LOOPBACK_REDIRECT_URI}."),
    ] = None,
    connection: Connection,
    json_output: JsonOpt = False,
) -> None:
    """Register the agent (Phase A); the client credentials are stored, never printed."""
    setup = connection.setup
    requested: dict[str, list[str]] = {}
    for entry in provider or []:
        name, sep, scopes = entry.partition("=")
        if not sep or not name or not scopes_of([scopes]):
            raise ValueError(f"--provider wants PROVIDER=scope1,scope2, got {entry!r}")
        requested[name] = scopes_of([scopes])
    with connection.client() as client:
        if not requested:
            if not scope:
                raise ValueError("say what to ask for: --provider P=scopes or --scope (native)")
            found = client.discover()
            if not isinstance(found, AppDiscovery):
                raise ValueError("a gateway serves several providers: use --provider P=scopes")
            requested[found.app_id] = scopes_of(scope)
        developer = developer_of(setup, developer_name, developer_id, client.agent_id)
        if not json_output:
            warn_developer_mismatch(client.agent_id, developer)
        result = client.register(
            requested,
            developer=developer,
            purpose=purpose,
            redirect_uris=redirect_uri or [LOOPBACK_REDIRECT_URI],
        )
        data = result.dump()
        data.pop("client_secret", None)
        data["credentials_stored_in"] = str(CredentialStore(setup.directory).path)

    headline = (
        f"Agent status: {_status_text(result.agent_status)}  "
        f"client_id [bold]{escape(result.client_id)}[/]  "
        f"(approval expires {result.approval_expires:%Y-%m-%d %H:%M} UTC)"
    )
    stored = "[dim]Client credentials stored; the secret is never printed.[/]"
    Output(json_output).result(data, _approval_view(headline, result.approved_providers, stored))


@handles_errors()
@connects
def status(
    *,
    connection: Connection,
    json_output: JsonOpt = False,
) -> None:
    """Show the agent's registration as the server sees it."""
    with connection.client() as client:
        result = client.status()

    headline = (
        f"[bold]{escape(result.agent_id)}[/]: {_status_text(result.agent_status)} "
        f"(client_id {escape(result.client_id)}, expires "
        f"{result.approval_expires:%Y-%m-%d %H:%M} UTC)"
    )
    Output(json_output).result(result.dump(), _approval_view(headline, result.approved_providers))


def _token_summary(token: TokenResponse) -> dict[str, Any]:
    data = token.dump()
    data.pop("access_token", None)  # stored; `ath token --show` prints it on request
    return data


def _render_token(token: TokenResponse) -> Callable[[Console], None]:
    def render(console: Console) -> None:
        console.print(
            f"[green]✓[/] Authorized for [bold]{escape(token.provider_id)}[/]: "
            f"[green]{scope_text(token.effective_scopes)}[/] "
            f"(expires in {token.expires_in // 60} min; token stored)"
        )
        table = Table(title="Scope intersection (ATH §5)")
        for column in ("agent approved", "user consented", "effective"):
            table.add_column(column)
        si = token.scope_intersection
        table.add_row(
            scope_text(si.agent_approved),
            scope_text(si.user_consented),
            f"[bold green]{scope_text(si.effective)}[/]",
        )
        console.print(table)

    return render


@handles_errors()
@connects
def authorize(
    *,
    ctx: typer.Context,
    provider: Annotated[
        str | None, typer.Argument(help="Provider id (optional for a native service).")
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="Scopes to ask for (repeatable or a,b).")
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL instead of opening a browser.")
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="Print the URL and session and exit; finish later with --code and --session.",
        ),
    ] = False,
    code: Annotated[
        str | None, typer.Option("--code", help="Finish by hand: the code from the redirect.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Finish by hand: the ath_session_id.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the browser.")
    ] = 300.0,
    connection: Connection,
    json_output: JsonOpt = False,
) -> None:
    """Get the user's consent and a token (Phase B); the token is stored.

    By default opens the browser and catches the redirect on a 127.0.0.1 port.
    """
    out = Output(json_output)
    if code is not None and session is None:
        raise ValueError("--code needs --session (the ath_session_id)")
    with connection.client() as client:
        if session is not None:
            # Without --code: a session with no redirect URI, once the user finished (ATH §4.4).
            token = client.exchange_token(code, session)
            out.result(_token_summary(token), _render_token(token))
            return
        scopes = scopes_of(scope)
        if not scopes:
            raise ValueError("say which scopes to ask for: --scope a,b")
        if no_wait:
            pending = client.authorize(provider, scopes)
            data = {
                "authorization_url": pending.authorization_url,
                "ath_session_id": pending.ath_session_id,
                "provider_id": pending.provider_id,
                "next": f"ath authorize --session {pending.ath_session_id} --code CODE",
            }
            out.result(
                data,
                lambda console: console.print(
                    f"Open this URL and approve:\n\n  {escape(pending.authorization_url)}\n\n"
                    "Then finish with the code the page shows:\n"
                    f"  [bold]ath authorize --session {escape(pending.ath_session_id)} "
                    "--code CODE[/]"
                ),
            )
            return

        def on_url(url: str, opened: bool) -> None:
            if opened:
                out.info("Opened the authorization page in your browser.")
            else:
                out.info("Open this URL in a browser to authorize the agent:")
                # Unwrapped and unstyled, so that it can be copied whole.
                out.stderr.print(f"\n  {url}\n", soft_wrap=True, markup=False, highlight=False)

        opener = (ctx.obj or {}).get("opener") if isinstance(ctx.obj, dict) else None
        with out.stderr.status("Waiting for you to finish in the browser…"):
            token = run_interactive(
                client,
                provider,
                scopes,
                open_browser=not no_browser,
                opener=opener,
                on_url=on_url,
                timeout=timeout,
            )
    out.result(_token_summary(token), _render_token(token))


@handles_errors()
def token(
    provider: Annotated[str | None, typer.Argument(help="Only this provider.")] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Print the provider's access token itself.")
    ] = False,
    server: ServerOpt = None,
    agent_id: AgentOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List the stored tokens for a server (or print one with --show)."""
    setup = Setup.load()
    url, _ = setup.config.resolve_server(server)
    who = setup.agent_id(agent_id)
    store = CredentialStore(setup.directory)
    held = [t for _, t in store.tokens(url, who) if provider is None or t.provider_id == provider]
    out = Output(json_output)
    if show:
        if provider is None or not held:
            raise ValueError("--show needs the PROVIDER of a stored token")
        if held[0].is_expired() or held[0].refused:
            code = held[0].refused or "TOKEN_EXPIRED"
            out.error(
                code,
                "the server refused this token" if held[0].refused else "the token expired",
                hint=f"get a new one: ath authorize {provider} --scope ...",
            )
            raise typer.Exit(EXIT_REFUSED)
        out.result(
            {"access_token": held[0].access_token},
            lambda console: typer.echo(held[0].access_token),
        )
        return
    rows: list[dict[str, Any]] = [
        {
            "provider_id": t.provider_id,
            "effective_scopes": t.effective_scopes,
            "expires_in": t.expires_in(),
            "expired": t.is_expired(),
            "refused": t.refused,
        }
        for t in held
    ]

    def render(console: Console) -> None:
        if not rows:
            console.print(f"No tokens stored for {escape(url)}.")
            return
        table = Table(title=f"Tokens at {escape(url)}")
        for column in ("provider", "scopes", "expires"):
            table.add_column(column)
        for t in held:
            expires = "[red]expired[/]" if t.is_expired() else f"in {t.expires_in() // 60} min"
            if t.refused:
                expires = f"[red]refused by the server ({escape(t.refused)})[/]"
            table.add_row(escape(t.provider_id), scope_text(t.effective_scopes), expires)
        console.print(table)
        if any(t.refused or t.is_expired() for t in held):
            console.print(
                "A token marked red no longer works: get a new one with "
                "`ath authorize [PROVIDER] --scope ...`."
            )

    out.result({"server": url, "tokens": rows}, render)


@handles_errors()
@connects
def revoke(
    *,
    provider: Annotated[str | None, typer.Argument(help="Provider whose token to revoke.")] = None,
    connection: Connection,
    json_output: JsonOpt = False,
) -> None:
    """Revoke the stored token for a provider and forget it."""
    with connection.client() as client:
        client.revoke(provider)
    Output(json_output).result(
        {"revoked": True, "provider_id": provider},
        lambda console: console.print("[green]✓[/] Token revoked and forgotten."),
    )


def register_commands(app: typer.Typer) -> None:
    """Add these commands to the ``ath`` app."""
    for command in (discover, register, status, authorize, token, revoke):
        app.command(command.__name__)(command)
