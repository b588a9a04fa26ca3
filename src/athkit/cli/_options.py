"""What every ``ath`` agent command shares: its options (``--server``, ``--agent-id``, ``--key``,
``--mode``, ``--header``, ``--json``, ``--provider``) and :class:`Setup`, which resolves them with
the environment and ``ath config`` into a client."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, cast

import typer
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


def scopes_of(values: list[str] | None) -> list[str]:
    return [s for value in values or [] for s in value.replace(",", " ").split() if s]


def scope_text(scopes: list[str]) -> str:
    return escape(", ".join(scopes)) if scopes else "[dim]none[/]"


def developer_of(setup: Setup, name: str | None, dev_id: str | None) -> dict[str, str]:
    user = getpass.getuser()
    return {
        "name": name or setup.config.developer_name or user,
        "id": dev_id or setup.config.developer_id or user,
    }


def parse_headers(values: list[str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values or []:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header wants 'Name: value', got {value!r}")
        headers[name.strip()] = content.strip()
    return headers
