"""Where an agent keeps what the handshake gave it.

Client id and secret per (server, agent), access tokens per (server, agent, provider). The file
store lives in ``$XDG_CONFIG_HOME/athkit/credentials.json`` (mode 0600, replaced atomically,
locked against concurrent writers); the memory store is what a client uses when given none.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from athkit.agent._files import (
    config_dir,
    locked,
    parse_json_file,
    read_json_file,
    write_json_file,
)

CREDENTIALS_FILE = "credentials.json"


def server_key(base_url: str) -> str:
    """How a server is named in the store: its base URL without a trailing slash."""
    return base_url.rstrip("/")


class _Strict(BaseModel):
    # A file we wrote ourselves never has unknown fields; one that does was edited.
    model_config = ConfigDict(extra="forbid")


class StoredClient(_Strict):
    """Client credentials a server issued to an agent at registration (ATH §4.1)."""

    agent_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    agent_status: str = "approved"
    registered_at: float = Field(default_factory=time.time)


class StoredToken(_Strict):
    """An ATH access token (ATH §4.5) and when it stops working."""

    agent_id: str = Field(min_length=1)
    provider_id: str = Field(min_length=1)
    access_token: str = Field(min_length=1)
    effective_scopes: list[str]
    expires_at: float
    obtained_at: float = Field(default_factory=time.time)
    refused: str | None = Field(
        default=None,
        description="The server's code when it last refused this token (TOKEN_REVOKED, "
        "TOKEN_EXPIRED): the user must authorize again.",
    )

    def is_expired(self, now: float | None = None) -> bool:
        """True once the token is past its ``expires_in``."""
        return (now if now is not None else time.time()) >= self.expires_at

    def expires_in(self, now: float | None = None) -> int:
        """Seconds left (0 when expired)."""
        return max(0, int(self.expires_at - (now if now is not None else time.time())))


class _ServerRecord(_Strict):
    clients: dict[str, StoredClient] = Field(default_factory=dict)  # by agent_id
    tokens: dict[str, dict[str, StoredToken]] = Field(default_factory=dict)  # agent → provider


class _StoreData(_Strict):
    version: Literal[1] = 1
    servers: dict[str, _ServerRecord] = Field(default_factory=dict)


class MemoryCredentialStore:
    """Credentials kept in this process only (lost when it ends)."""

    def __init__(self) -> None:
        self._data = _StoreData()

    @contextmanager
    def _transaction(self) -> Iterator[_StoreData]:
        yield self._data

    def _read(self) -> _StoreData:
        return self._data

    def get_client(self, server: str, agent_id: str) -> StoredClient | None:
        """The credentials of ``agent_id`` at ``server``, if it registered there."""
        record = self._read().servers.get(server_key(server))
        return record.clients.get(agent_id) if record else None

    def save_client(self, server: str, client: StoredClient) -> None:
        """Remember a registration (replacing an older one of the same agent)."""
        with self._transaction() as data:
            record = data.servers.setdefault(server_key(server), _ServerRecord())
            record.clients[client.agent_id] = client

    def get_token(self, server: str, agent_id: str, provider_id: str) -> StoredToken | None:
        """The token of ``agent_id`` for ``provider_id`` at ``server``, expired or not."""
        record = self._read().servers.get(server_key(server))
        if record is None:
            return None
        return record.tokens.get(agent_id, {}).get(provider_id)

    def save_token(self, server: str, token: StoredToken) -> None:
        """Remember a token (replacing the previous one for the same provider)."""
        with self._transaction() as data:
            record = data.servers.setdefault(server_key(server), _ServerRecord())
            record.tokens.setdefault(token.agent_id, {})[token.provider_id] = token

    def delete_token(self, server: str, agent_id: str, provider_id: str) -> StoredToken | None:
        """Forget a token; returns it if there was one."""
        with self._transaction() as data:
            record = data.servers.get(server_key(server))
            if record is None:
                return None
            by_provider = record.tokens.get(agent_id, {})
            removed = by_provider.pop(provider_id, None)
            if not by_provider:
                record.tokens.pop(agent_id, None)
            return removed

    def tokens(
        self, server: str | None = None, agent_id: str | None = None
    ) -> list[tuple[str, StoredToken]]:
        """Every stored token as ``(server, token)``, optionally for one server and agent."""
        found: list[tuple[str, StoredToken]] = []
        for name, record in sorted(self._read().servers.items()):
            if server is not None and name != server_key(server):
                continue
            for agent, by_provider in sorted(record.tokens.items()):
                if agent_id is not None and agent != agent_id:
                    continue
                found.extend((name, token) for _, token in sorted(by_provider.items()))
        return found


class CredentialStore(MemoryCredentialStore):
    """Credentials in a 0600 JSON file that every ``ath`` run and SDK client shares.

    ``directory`` defaults to ``$ATH_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/athkit``
    (``~/.config/athkit``). Every read
    goes to the file, so two processes see each other's updates; writes hold a lock and replace
    the file atomically. A file that is unreadable, not ours, or edited into nonsense raises
    :class:`CredentialStoreError` saying so, instead of being silently replaced.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        super().__init__()
        self.directory = Path(directory) if directory is not None else config_dir()
        self.path = self.directory / CREDENTIALS_FILE

    def _read(self) -> _StoreData:
        raw = read_json_file(self.path)
        if raw is None:
            return _StoreData()
        return _parse(self.path, raw)

    @contextmanager
    def _transaction(self) -> Iterator[_StoreData]:
        with locked(self.path):
            data = self._read()
            yield data
            write_json_file(self.path, data.model_dump(mode="json"))


def _parse(path: Path, raw: dict[str, Any]) -> _StoreData:
    return parse_json_file(
        path,
        raw,
        _StoreData,
        advice="it was damaged or edited — fix or delete it and register again",
    )
