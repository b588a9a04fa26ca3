"""The small store interfaces the engine works through, one per kind of record.

Implementations: ``MemoryStores`` (tests, one process) and ``SqlStores`` (SQLAlchemy 2 async;
SQLite file by default, PostgreSQL too). A store that fails raises any exception; the engine turns
it into ``INTERNAL_ERROR`` and issues nothing (fail closed).

State changes that must happen at most once (binding a browser, completing a callback, consuming
a session) are compare-and-set operations, so two concurrent requests cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, Unpack

from athkit.server._records import (
    AgentRecord,
    AgentState,
    AuditEvent,
    ProviderGrant,
    SessionRecord,
    SessionState,
    TokenRecord,
)


class DuplicateAgentError(Exception):
    """Raised by ``AgentStore.insert`` when the agent_id is already registered."""


class AgentStore(Protocol):
    """Registrations (ATH §4.1)."""

    async def insert(self, agent: AgentRecord) -> None:
        """Store a new registration; raise :class:`DuplicateAgentError` for a known agent_id."""
        ...

    async def get(self, client_id: str) -> AgentRecord | None:
        """The registration with this client_id."""
        ...

    async def get_by_agent_id(self, agent_id: str) -> AgentRecord | None:
        """The registration of this agent_id."""
        ...

    async def update(self, agent: AgentRecord) -> None:
        """Replace the stored registration (status, approvals, reason, expiry)."""
        ...

    async def list(self, status: AgentState | None = None) -> list[AgentRecord]:
        """Every registration, optionally only those with ``status``; oldest first."""
        ...


class SessionStore(Protocol):
    """ATH sessions (ATH §4.3–§4.5)."""

    async def insert(self, session: SessionRecord) -> None:
        """Store a new session."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """The session with this id."""
        ...

    async def get_by_state_hash(self, oauth_state_hash: str) -> SessionRecord | None:
        """The session whose server-side OAuth ``state`` hashes to this value."""
        ...

    async def transition(
        self,
        session_id: str,
        from_status: SessionState,
        to_status: SessionState,
        **fields: Any,
    ) -> bool:
        """Atomically move a session from ``from_status`` to ``to_status``, setting ``fields``.

        Return ``False`` (and change nothing) when the session is not in ``from_status``.
        """
        ...

    async def delete_expired(self, before: float) -> int:
        """Remove sessions that expired before ``before``; return how many."""
        ...


class TokenQuery(TypedDict, total=False):
    """What :meth:`TokenStore.list` filters on (each optional), and how many it returns
    (``limit``, 100 by default). With ``active_at``, only tokens unrevoked and unexpired then."""

    client_id: str | None
    user_id: str | None
    provider_id: str | None
    active_at: float | None
    limit: int


class TokenStore(Protocol):
    """Issued ATH access tokens, by hash (ATH §4.5, §4.7)."""

    async def insert(self, token: TokenRecord) -> None:
        """Store a newly issued token."""
        ...

    async def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        """The token whose SHA-256 hash is ``token_hash``."""
        ...

    async def get(self, token_id: str) -> TokenRecord | None:
        """The token with this public id (admin listings)."""
        ...

    async def revoke(self, token_id: str, at: float, by: str) -> bool:
        """Mark one token revoked; ``False`` if it was already revoked or is unknown."""
        ...

    async def revoke_matching(
        self, at: float, by: str, *, client_id: str, user_id: str | None = None
    ) -> int:
        """Revoke every live token of ``client_id`` (optionally only ``user_id``'s); count them."""
        ...

    async def list(self, **query: Unpack[TokenQuery]) -> list[TokenRecord]:
        """Tokens, newest first; with ``active_at``, only those unrevoked and unexpired then."""
        ...

    async def count_active(self, at: float) -> int:
        """How many tokens are unrevoked and unexpired at ``at`` (one count, no rows read)."""
        ...


class GrantStore(Protocol):
    """The users' provider tokens (encrypted) per agent and provider."""

    async def upsert(self, grant: ProviderGrant) -> ProviderGrant:
        """Insert ``grant``, or replace the grant of the same (client_id, user_id, provider_id)
        when it has the same ``grant_id`` (its ``created_at`` stays); return the stored grant.
        An existing grant of that owner under another ``grant_id`` is returned untouched."""
        ...

    async def get(self, grant_id: str) -> ProviderGrant | None:
        """The grant with this id."""
        ...

    async def update(self, grant: ProviderGrant) -> None:
        """Replace a stored grant (refreshed tokens, ``needs_user``)."""
        ...

    async def list_for_user(self, user_id: str) -> list[ProviderGrant]:
        """Every grant of ``user_id``, oldest first."""
        ...

    async def claim_refresh(self, grant_id: str, seen_updated_at: float, until: float) -> bool:
        """Atomically set the grant's ``updated_at`` to ``until`` (a lease in the future) if it
        is still ``seen_updated_at``; ``False`` when another instance changed it first."""
        ...

    async def delete(self, grant_id: str) -> None:
        """Forget a grant and its provider tokens."""
        ...


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of ``AuditStore.query``; ``None`` means any."""

    agent_id: str | None = None
    user_id: str | None = None
    provider_id: str | None = None
    event: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100
    before_id: int | None = None
    """Only events older than this ``event_id`` (the next page after one ending there)."""


class AuditStore(Protocol):
    """Audit events (ATH §6)."""

    async def append(self, event: AuditEvent) -> None:
        """Store one event."""
        ...

    async def query(self, query: AuditQuery) -> Sequence[AuditEvent]:
        """Matching events, newest first, at most ``query.limit``."""
        ...


@dataclass(frozen=True, slots=True)
class EngineStores:
    """Every store the engine needs, passed in as one bundle."""

    agents: AgentStore
    sessions: SessionStore
    tokens: TokenStore
    grants: GrantStore
    audit: AuditStore
