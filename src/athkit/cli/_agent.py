"""``ath`` commands for agent developers: keys, identity, and the whole handshake.

``keygen``, ``identity``, ``discover``, ``register``, ``status``, ``authorize``, ``token``,
``call``, ``revoke`` and the ``config`` group. Exit codes are listed in ``_agent_output``.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from athkit.agent import (
    LOOPBACK_REDIRECT_URI,
    AgentConfig,
    ATHClient,
    CredentialStore,
    Mode,
    ServerEntry,
    build_identity_document,
    check_default_headers,
    config_dir,
    generate_key,
    load_key,
    save_key,
    serve_identity,
)
from athkit.agent import authorize_interactive as run_interactive
from athkit.cli._agent_output import EXIT_OK, EXIT_REFUSED, Output, handles_errors
from athkit.protocol import (
    AppDiscovery,
    ApprovedProvider,
    GatewayDiscovery,
    PrivateKey,
    TokenResponse,
    key_id,
    public_key_to_jwk,
)

# --- shared options --------------------------------------------------------------------------

ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server", "-s", envvar="ATH_SERVER", help="Server name from `ath config` or base URL."
    ),
]
ModeOpt = Annotated[
    str | None, typer.Option("--mode", help="auto | gateway | native (default: from config).")
]
AgentOpt = Annotated[
    str | None,
    typer.Option("--agent-id", envvar="ATH_AGENT_ID", help="The agent_id (identity document URL)."),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", envvar="ATH_KEY", help="Private key PEM (default: from config)."),
]
HeaderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--header",
        "-H",
        help="'Name: value' sent on every request to the server (repeatable; added to the "
        "server's headers from `ath config set-server --header`).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document (for scripts).")]
ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", "-p", help="Provider id (gateway mode; native: the service)."),
]


@dataclass
class _Setup:
    """What every networked command needs, resolved from options, environment and config."""

    directory: Path
    config: AgentConfig

    @classmethod
    def load(cls) -> _Setup:
        directory = config_dir()
        return cls(directory, AgentConfig.load(directory))

    def key(self, key_path: Path | None) -> PrivateKey:
        return load_key(key_path or self.config.resolve_key_path(self.directory))

    def agent_id(self, given: str | None) -> str:
        agent_id = given or self.config.agent_id
        if not agent_id:
            raise ValueError(
                "no agent id: pass --agent-id URL or run `ath config set agent-id URL`"
            )
        return agent_id

    def client(
        self,
        server: str | None,
        mode: str | None,
        agent_id: str | None,
        key_path: Path | None,
        *,
        anonymous: bool = False,
        headers: list[str] | dict[str, str] | None = None,
    ) -> ATHClient:
        url, configured_mode = self.config.resolve_server(server)
        given = headers if isinstance(headers, dict) else _parse_headers(headers)
        extra = {**self.config.server_headers(server), **given}
        chosen = mode or configured_mode
        if chosen not in ("auto", "gateway", "native"):
            raise ValueError(f"--mode must be auto, gateway or native, not {chosen!r}")
        if anonymous and not (agent_id or self.config.agent_id):
            # Discovery signs nothing; a throwaway identity lets it run before any setup.
            key, who = generate_key(), "urn:ath:anonymous"
        else:
            key, who = self.key(key_path), self.agent_id(agent_id)
        return ATHClient(
            url,
            agent_id=who,
            private_key=key,
            mode=cast(Mode | Literal["auto"], chosen),
            store=CredentialStore(self.directory),
            headers=extra,
        )


def _scopes(values: list[str] | None) -> list[str]:
    return [s for value in values or [] for s in value.replace(",", " ").split() if s]


def _scope_text(scopes: list[str]) -> str:
    return escape(", ".join(scopes)) if scopes else "[dim]none[/]"


# --- keys and identity -----------------------------------------------------------------------


@handles_errors()
def keygen(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the key.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Create the agent's P-256 signing key (written with mode 0600)."""
    setup = _Setup.load()
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


def _developer(setup: _Setup, name: str | None, dev_id: str | None) -> dict[str, str]:
    user = getpass.getuser()
    return {
        "name": name or setup.config.developer_name or user,
        "id": dev_id or setup.config.developer_id or user,
    }


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
    setup = _Setup.load()
    private = setup.key(key)
    agent_name = name or setup.config.name or "ath agent"
    developer = _developer(setup, developer_name, developer_id)
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


# --- the handshake ---------------------------------------------------------------------------


@handles_errors()
def discover(
    server: ServerOpt = None,
    mode: ModeOpt = None,
    header: HeaderOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Show what the gateway or service offers (ath.json or ath-app.json)."""
    setup = _Setup.load()
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
                    _scope_text(p.available_scopes),
                    "review" if p.agent_approval_required else "automatic",
                )
            console.print(table)
        elif isinstance(found, AppDiscovery):
            table = Table(title=f"Service {escape(found.name)} (ATH {found.ath_version})")
            table.add_column("field")
            table.add_column("value")
            table.add_row("app_id", escape(found.app_id))
            table.add_row("api_base", escape(found.api_base))
            table.add_row("scopes", _scope_text(found.auth.scopes_supported))
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
            f"[green]{_scope_text(p.approved_scopes)}[/]",
            f"[red]{_scope_text(p.denied_scopes)}[/]" if p.denied_scopes else "",
            escape(p.denial_reason or ""),
        )
    return table


_STATUS_STYLE = {"approved": "green", "pending": "yellow", "denied": "red"}


@handles_errors()
def register(
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
    server: ServerOpt = None,
    mode: ModeOpt = None,
    agent_id: AgentOpt = None,
    key: KeyOpt = None,
    header: HeaderOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Register the agent (Phase A); the client credentials are stored, never printed."""
    setup = _Setup.load()
    requested: dict[str, list[str]] = {}
    for entry in provider or []:
        name, sep, scopes = entry.partition("=")
        if not sep or not name or not _scopes([scopes]):
            raise ValueError(f"--provider wants PROVIDER=scope1,scope2, got {entry!r}")
        requested[name] = _scopes([scopes])
    with setup.client(server, mode, agent_id, key, headers=header) as client:
        if not requested:
            if not scope:
                raise ValueError("say what to ask for: --provider P=scopes or --scope (native)")
            found = client.discover()
            if not isinstance(found, AppDiscovery):
                raise ValueError("a gateway serves several providers: use --provider P=scopes")
            requested[found.app_id] = _scopes(scope)
        result = client.register(
            requested,
            developer=_developer(setup, developer_name, developer_id),
            purpose=purpose,
            redirect_uris=redirect_uri or [LOOPBACK_REDIRECT_URI],
        )
        data = result.dump()
        data.pop("client_secret", None)
        data["credentials_stored_in"] = str(CredentialStore(setup.directory).path)

    def render(console: Console) -> None:
        style = _STATUS_STYLE.get(result.agent_status, "white")
        console.print(
            f"Agent status: [bold {style}]{result.agent_status}[/]  "
            f"client_id [bold]{escape(result.client_id)}[/]  "
            f"(approval expires {result.approval_expires:%Y-%m-%d %H:%M} UTC)"
        )
        console.print(_provider_table("Approval", result.approved_providers))
        console.print("[dim]Client credentials stored; the secret is never printed.[/]")

    Output(json_output).result(data, render)


@handles_errors()
def status(
    server: ServerOpt = None,
    mode: ModeOpt = None,
    agent_id: AgentOpt = None,
    key: KeyOpt = None,
    header: HeaderOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Show the agent's registration as the server sees it."""
    setup = _Setup.load()
    with setup.client(server, mode, agent_id, key, headers=header) as client:
        result = client.status()

    def render(console: Console) -> None:
        style = _STATUS_STYLE.get(result.agent_status, "white")
        console.print(
            f"[bold]{escape(result.agent_id)}[/]: [bold {style}]{result.agent_status}[/] "
            f"(client_id {escape(result.client_id)}, expires "
            f"{result.approval_expires:%Y-%m-%d %H:%M} UTC)"
        )
        console.print(_provider_table("Approval", result.approved_providers))

    Output(json_output).result(result.dump(), render)


def _token_summary(token: TokenResponse) -> dict[str, Any]:
    data = token.dump()
    data.pop("access_token", None)  # stored; `ath token --show` prints it on request
    return data


def _render_token(token: TokenResponse) -> Callable[[Console], None]:
    def render(console: Console) -> None:
        console.print(
            f"[green]✓[/] Authorized for [bold]{escape(token.provider_id)}[/]: "
            f"[green]{_scope_text(token.effective_scopes)}[/] "
            f"(expires in {token.expires_in // 60} min; token stored)"
        )
        table = Table(title="Scope intersection (ATH §5)")
        for column in ("agent approved", "user consented", "effective"):
            table.add_column(column)
        si = token.scope_intersection
        table.add_row(
            _scope_text(si.agent_approved),
            _scope_text(si.user_consented),
            f"[bold green]{_scope_text(si.effective)}[/]",
        )
        console.print(table)

    return render


@handles_errors()
def authorize(
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
    server: ServerOpt = None,
    mode: ModeOpt = None,
    agent_id: AgentOpt = None,
    key: KeyOpt = None,
    header: HeaderOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Get the user's consent and a token (Phase B); the token is stored.

    By default opens the browser and catches the redirect on a 127.0.0.1 port.
    """
    setup = _Setup.load()
    out = Output(json_output)
    if code is not None and session is None:
        raise ValueError("--code needs --session (the ath_session_id)")
    with setup.client(server, mode, agent_id, key, headers=header) as client:
        if session is not None:
            # Without --code: a session with no redirect URI, once the user finished (ATH §4.4).
            token = client.exchange_token(code, session)
            out.result(_token_summary(token), _render_token(token))
            return
        scopes = _scopes(scope)
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
    setup = _Setup.load()
    url, _ = setup.config.resolve_server(server)
    who = setup.agent_id(agent_id)
    store = CredentialStore(setup.directory)
    held = [t for _, t in store.tokens(url, who) if provider is None or t.provider_id == provider]
    out = Output(json_output)
    if show:
        if provider is None or not held:
            raise ValueError("--show needs the PROVIDER of a stored token")
        if held[0].is_expired():
            out.error("TOKEN_EXPIRED", "the token expired; the user must authorize again")
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
            table.add_row(escape(t.provider_id), _scope_text(t.effective_scopes), expires)
        console.print(table)

    out.result({"server": url, "tokens": rows}, render)


def _read_data(data: str | None) -> bytes | None:
    if data is None:
        return None
    if data == "@-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        try:
            return Path(data[1:]).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {data[1:]}: {exc.strerror}") from None
    return data.encode()


def _parse_headers(values: list[str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values or []:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header wants 'Name: value', got {value!r}")
        headers[name.strip()] = content.strip()
    return headers


def _body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


@handles_errors()
def call(
    method: Annotated[str, typer.Argument(help="HTTP method, e.g. GET.")],
    path: Annotated[str, typer.Argument(help="API path, e.g. /messages.")],
    provider: ProviderOpt = None,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Request body; @file or @- for stdin.")
    ] = None,
    query: Annotated[
        list[str] | None, typer.Option("--query", "-q", help="name=value (repeatable).")
    ] = None,
    server: ServerOpt = None,
    mode: ModeOpt = None,
    agent_id: AgentOpt = None,
    key: KeyOpt = None,
    header: HeaderOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Call the protected API: the gateway proxy, or the native service's api_base."""
    setup = _Setup.load()
    # -H goes on every request to the server; a Content-Type only on the API call itself.
    every = _parse_headers(header)
    headers = {k: every.pop(k) for k in list(every) if k.lower() == "content-type"}
    body = _read_data(data)
    if body is not None and not headers:
        try:
            json.loads(body)
            headers["Content-Type"] = "application/json"
        except ValueError:
            headers["Content-Type"] = "application/octet-stream"
    params: list[tuple[str, str]] = []
    for item in query or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--query wants name=value, got {item!r}")
        params.append((name, value))
    with setup.client(server, mode, agent_id, key, headers=every) as client:
        if client.mode is None:
            client.discover()
        target = provider
        if client.mode == "gateway" and target is None:
            held = client.store.tokens(client.base_url, client.agent_id)
            if len(held) != 1:
                raise ValueError("name the provider with --provider (gateway mode)")
            target = held[0][1].provider_id
        if client.mode == "gateway":
            assert target is not None
            response = client.proxy(
                target, method, path, params=params, headers=headers, content=body
            )
        else:
            response = client.request(
                method, path, provider_id=target, params=params, headers=headers, content=body
            )
    out = Output(json_output)
    result = {
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": _body_of(response),
    }

    def render(console: Console) -> None:
        style = "green" if response.status_code < 400 else "red"
        out.stderr.print(f"[{style}]HTTP {response.status_code}[/]")
        if isinstance(result["body"], str):
            typer.echo(result["body"])
        else:
            console.print_json(data=result["body"])

    out.result(result, render)
    raise typer.Exit(EXIT_OK if response.status_code < 400 else EXIT_REFUSED)


@handles_errors()
def revoke(
    provider: Annotated[str | None, typer.Argument(help="Provider whose token to revoke.")] = None,
    server: ServerOpt = None,
    mode: ModeOpt = None,
    agent_id: AgentOpt = None,
    key: KeyOpt = None,
    header: HeaderOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Revoke the stored token for a provider and forget it."""
    setup = _Setup.load()
    with setup.client(server, mode, agent_id, key, headers=header) as client:
        if provider is None and client.mode == "gateway":
            raise ValueError("name the PROVIDER whose token to revoke")
        client.revoke(provider)
    Output(json_output).result(
        {"revoked": True, "provider_id": provider},
        lambda console: console.print("[green]✓[/] Token revoked and forgotten."),
    )


# --- config ----------------------------------------------------------------------------------

config_app = typer.Typer(
    name="config", help="Named servers, default agent id and key path.", no_args_is_help=True
)

_SETTINGS = {
    "agent-id": "agent_id",
    "key-path": "key_path",
    "name": "name",
    "developer-name": "developer_name",
    "developer-id": "developer_id",
    "default-server": "default_server",
}


def _show_config(out: Output, setup: _Setup) -> None:
    cfg = setup.config
    data = cfg.model_dump(mode="json", exclude_none=True)
    data["config_dir"] = str(setup.directory)
    for entry in data.get("servers", {}).values():
        if "headers" in entry:  # values may be credentials (a gateway's session header)
            entry["headers"] = sorted(entry["headers"])

    def render(console: Console) -> None:
        console.print(f"Config directory: [bold]{escape(str(setup.directory))}[/]")
        for setting, attr in _SETTINGS.items():
            value = getattr(cfg, attr)
            console.print(f"  {setting:15} {escape(str(value)) if value else '[dim]unset[/]'}")
        table = Table(title="Servers")
        for column in ("name", "url", "mode", "headers", ""):
            table.add_column(column)
        for name, entry in sorted(cfg.servers.items()):
            mark = "default" if name == cfg.default_server else ""
            names = ", ".join(sorted(entry.headers or {}))
            table.add_row(escape(name), escape(entry.url), entry.mode, escape(names), mark)
        console.print(table)

    out.result(data, render)


@config_app.command("show")
@handles_errors()
def config_show(json_output: JsonOpt = False) -> None:
    """Show the configuration."""
    _show_config(Output(json_output), _Setup.load())


@config_app.command("set-server")
@handles_errors()
def config_set_server(
    name: Annotated[str, typer.Argument(help="A short name, e.g. shop.")],
    url: Annotated[str, typer.Argument(help="The base URL.")],
    mode: Annotated[str, typer.Option("--mode", help="auto | gateway | native")] = "auto",
    default: Annotated[bool, typer.Option("--default", help="Make it the default.")] = False,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header", "-H", help="'Name: value' to send on every request to it (repeatable)."
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Add or change a named server (``--header`` replaces its saved headers)."""
    if "://" in name:
        raise ValueError("the NAME comes first, then the URL")
    setup = _Setup.load()
    headers = check_default_headers(_parse_headers(header))
    setup.config.servers = {
        **setup.config.servers,
        name: ServerEntry.model_validate({"url": url, "mode": mode, "headers": headers or None}),
    }
    if default or setup.config.default_server is None:
        setup.config.default_server = name
    setup.config.save(setup.directory)
    _show_config(Output(json_output), setup)


@config_app.command("remove-server")
@handles_errors()
def config_remove_server(name: str, json_output: JsonOpt = False) -> None:
    """Forget a named server (its stored credentials stay in the credential store)."""
    setup = _Setup.load()
    if name not in setup.config.servers:
        raise ValueError(f"no server named {name!r}")
    setup.config.servers = {k: v for k, v in setup.config.servers.items() if k != name}
    if setup.config.default_server == name:
        setup.config.default_server = None
    setup.config.save(setup.directory)
    _show_config(Output(json_output), setup)


@config_app.command("set")
@handles_errors()
def config_set(
    setting: Annotated[str, typer.Argument(help=", ".join(_SETTINGS))],
    value: Annotated[str, typer.Argument()],
    json_output: JsonOpt = False,
) -> None:
    """Set a default (agent-id, key-path, name, developer-name, developer-id, default-server)."""
    setup = _Setup.load()
    attr = _SETTINGS.get(setting)
    if attr is None:
        raise ValueError(f"unknown setting {setting!r}; one of: {', '.join(_SETTINGS)}")
    if attr == "default_server" and value not in setup.config.servers:
        raise ValueError(f"no server named {value!r}; add it with `ath config set-server`")
    if attr == "key_path":
        value = str(Path(value).expanduser().resolve())
    setattr(setup.config, attr, value)
    setup.config.save(setup.directory)
    _show_config(Output(json_output), setup)


@config_app.command("unset")
@handles_errors()
def config_unset(setting: str, json_output: JsonOpt = False) -> None:
    """Clear a default."""
    setup = _Setup.load()
    attr = _SETTINGS.get(setting)
    if attr is None:
        raise ValueError(f"unknown setting {setting!r}; one of: {', '.join(_SETTINGS)}")
    setattr(setup.config, attr, None)
    setup.config.save(setup.directory)
    _show_config(Output(json_output), setup)


def register_agent_commands(app: typer.Typer) -> None:
    """Add the agent developer's commands to the ``ath`` app."""
    for command in (keygen, identity, discover, register, status, authorize, token, call, revoke):
        app.command(command.__name__)(command)
    app.add_typer(config_app, name="config")
