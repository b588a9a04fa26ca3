"""The agent's settings in the user's config directory: named servers and defaults.

``$XDG_CONFIG_HOME/athkit/config.json`` (0600, written atomically), shared by ``ath`` and any
script that wants the same defaults. Secrets never go here; they live in the credential store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from athkit.agent._files import (
    config_dir,
    locked,
    parse_json_file,
    read_json_file,
    write_json_file,
)
from athkit.protocol._settings_checks import http_base_url

CONFIG_FILE = "config.json"
KEY_FILE = "agent.pem"


class ServerEntry(BaseModel):
    """A named gateway or native service."""

    model_config = ConfigDict(extra="forbid")

    url: str
    mode: Literal["auto", "gateway", "native"] = "auto"
    # Sent on every request to this server (for gateways that want a header of their own).
    headers: dict[str, str] | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_base_url(value, "must start with http:// or https://")


class AgentConfig(BaseModel):
    """Named servers, the default server, and who the agent is."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    version: Literal[1] = 1
    servers: dict[str, ServerEntry] = Field(default_factory=dict)
    default_server: str | None = None
    agent_id: str | None = None
    key_path: str | None = None
    name: str | None = None
    developer_name: str | None = None
    developer_id: str | None = None

    @classmethod
    def load(cls, directory: Path | None = None) -> AgentConfig:
        """The saved configuration (empty when there is none yet)."""
        path = (directory or config_dir()) / CONFIG_FILE
        raw = read_json_file(path)
        if raw is None:
            return cls()
        return parse_json_file(path, raw, cls, advice="fix or delete it")

    def save(self, directory: Path | None = None) -> Path:
        """Write the configuration (0600, atomically)."""
        path = (directory or config_dir()) / CONFIG_FILE
        with locked(path):
            write_json_file(path, self.model_dump(mode="json", exclude_none=True))
        return path

    def resolve_key_path(self, directory: Path | None = None) -> Path:
        """The configured key file, else ``agent.pem`` in the config directory."""
        return Path(self.key_path) if self.key_path else (directory or config_dir()) / KEY_FILE

    def server_headers(self, name_or_url: str | None) -> dict[str, str]:
        """The configured extra headers of a named server (or of the entry with this URL)."""
        choice = name_or_url or self.default_server
        if choice is None:
            return {}
        if "://" not in choice:
            entry = self.servers.get(choice)
            return dict(entry.headers or {}) if entry else {}
        url = choice.rstrip("/")
        for entry in self.servers.values():
            if entry.url == url:
                return dict(entry.headers or {})
        return {}

    def resolve_server(self, name_or_url: str | None) -> tuple[str, str]:
        """``(url, mode)`` for a server name or URL (the default server when ``None``).

        Raises ``ValueError`` with what to do when nothing fits.
        """
        choice = name_or_url or self.default_server
        if choice is None:
            raise ValueError(
                "no server given: pass --server URL, or add one with "
                "`ath config set-server NAME URL --default`"
            )
        if "://" in choice:
            return ServerEntry(url=choice).url, "auto"
        entry = self.servers.get(choice)
        if entry is None:
            known = ", ".join(sorted(self.servers)) or "none"
            looks_like_host = "." in choice or ":" in choice or choice == "localhost"
            hint = (
                f"; to give an address, include its scheme: --server http://{choice} "
                f"(or https://{choice})"
                if looks_like_host
                else f"; add it with `ath config set-server {choice} URL`"
            )
            raise ValueError(f"unknown server {choice!r} (configured: {known}){hint}")
        return entry.url, entry.mode
