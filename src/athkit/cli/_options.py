"""What every ``ath`` agent command shares: its options (``--server``, ``--agent-id``, ``--key``,
``--mode``, ``--header``, ``--json``, ``--provider``) and :class:`Setup`, which resolves them with
the environment and ``ath config`` into a client; and what the server commands share (their
groups, ``migrate --check``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast, get_type_hints
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from athkit.agent import (
    AgentConfig,
    ATHClient,
    CredentialStore,
    Mode,
    config_dir,
    generate_key,
    load_key,
)
from athkit.protocol import (
    PrivateKey,
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


CHECK_OPT = typer.Option(
    False, "--check", help="Change nothing: exit 1 unless the schema is at this release's head."
)


def command_group(name: str, help: str) -> typer.Typer:
    """A group of ``ath`` subcommands; called bare, it shows its help."""
    return typer.Typer(name=name, help=help, no_args_is_help=True)


@dataclass
class Setup:
    """What every networked command needs, resolved from options, environment and config."""

    directory: Path
    config: AgentConfig

    @classmethod
    def load(cls) -> Setup:
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
        given = headers if isinstance(headers, dict) else parse_headers(headers)
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


_CONNECTION_OPTIONS: dict[str, Any] = {
    "server": ServerOpt,
    "mode": ModeOpt,
    "agent_id": AgentOpt,
    "key": KeyOpt,
    "header": HeaderOpt,
}


@dataclass(frozen=True)
class Connection:
    """Where and as whom a command connects (``--server``, ``--mode``, ``--agent-id``,
    ``--key``, ``--header``), with the :class:`Setup` they are resolved against."""

    setup: Setup
    server: str | None
    mode: str | None
    agent_id: str | None
    key: Path | None
    header: list[str] | None

    def client(self, *, headers: dict[str, str] | None = None) -> ATHClient:
        """The client these options name; ``headers`` replace the ``--header`` values."""
        chosen = self.header if headers is None else headers
        return self.setup.client(self.server, self.mode, self.agent_id, self.key, headers=chosen)


def connects(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the connection options where its ``connection`` parameter stands.

    Typer sees (and ``--help`` lists) ``--server``, ``--mode``, ``--agent-id``, ``--key`` and
    ``--header`` in that place; the command receives them as one :class:`Connection`.
    """
    hints = get_type_hints(command, include_extras=True)
    params: list[inspect.Parameter] = []
    for param in inspect.signature(command).parameters.values():
        if param.name != "connection":
            params.append(param.replace(annotation=hints[param.name], kind=param.KEYWORD_ONLY))
            continue
        for name, option in _CONNECTION_OPTIONS.items():
            params.append(
                inspect.Parameter(name, param.KEYWORD_ONLY, default=None, annotation=option)
            )

    @functools.wraps(command)
    def run(**values: Any) -> None:
        chosen = {name: values.pop(name) for name in _CONNECTION_OPTIONS}
        command(connection=Connection(Setup.load(), **chosen), **values)

    run.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    run.__annotations__ = {param.name: param.annotation for param in params}
    return run


def scopes_of(values: list[str] | None) -> list[str]:
    return [s for value in values or [] for s in value.replace(",", " ").split() if s]


def scope_text(scopes: list[str]) -> str:
    return escape(", ".join(scopes)) if scopes else "[dim]none[/]"


def developer_of(
    setup: Setup, name: str | None, dev_id: str | None, agent_id: str | None = None
) -> dict[str, str]:
    """The developer named by the options, else by ``ath config``; never the Unix login (it
    would be shown to users). Unset, both default to the agent_id's host, the same for the
    identity document and the registration, with a note saying how to set them."""
    chosen_name = name or setup.config.developer_name
    chosen_id = dev_id or setup.config.developer_id
    if chosen_name and chosen_id:
        return {"name": chosen_name, "id": chosen_id}
    host = urlsplit(agent_id or setup.config.agent_id or "").hostname or "unnamed developer"
    Console(stderr=True, highlight=False).print(
        f"[yellow]Note:[/] no developer set; using {escape(host)!r}. Users see this name: set "
        "it with `ath config set developer-name NAME` and `ath config set developer-id ID`.",
        soft_wrap=True,
    )
    return {"name": chosen_name or host, "id": chosen_id or host}


def warn_developer_mismatch(agent_id: str, developer: dict[str, str]) -> None:
    """Warn when the published identity document names another developer than ``developer``
    (the registration's): the service and its users would see two different ones."""
    try:
        published = httpx.get(agent_id, timeout=5.0, follow_redirects=False).json()
    except (httpx.HTTPError, ValueError):
        return
    found = published.get("developer") if isinstance(published, dict) else None
    if not isinstance(found, dict):
        return
    if (found.get("name"), found.get("id")) != (developer["name"], developer["id"]):
        Console(stderr=True, highlight=False).print(
            f"[yellow]Warning:[/] the identity document at {escape(agent_id)} names developer "
            f"{escape(str(found.get('name')))!r} ({escape(str(found.get('id')))}), this "
            f"registration {escape(developer['name'])!r} ({escape(developer['id'])}): make "
            "them match (--developer-name/--developer-id, or ath config set developer-name).",
            soft_wrap=True,
        )


def parse_headers(values: list[str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values or []:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header wants 'Name: value', got {value!r}")
        headers[name.strip()] = content.strip()
    return headers
