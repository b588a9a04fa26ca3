"""In-memory stores: for tests and single-process experiments only (a restart loses them)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from typing import Any, TypeVar, Unpack

from athkit.server._records import (
    AgentRecord,
    AgentState,
    AuditEvent,
    ProviderGrant,
    SessionRecord,
    SessionState,
    TokenRecord,
)
from athkit.server._stores import AuditQuery, DuplicateAgentError, EngineStores, TokenQuery

_T = TypeVar("_T")


def _copy(record: _T) -> _T:
    # Callers get their own copies, as they would from a database.
    return copy.deepcopy(record)


class MemoryAgentStore:
    """Registrations in a dict."""

    def __init__(self) -> None:
        self._by_client: dict[str, AgentRecord] = {}
        self._by_agent: dict[str, str] = {}

    async def insert(self, agent: AgentRecord) -> None:
        if agent.agent_id in self._by_agent:
            raise DuplicateAgentError(agent.agent_id)
        self._by_client[agent.client_id] = _copy(agent)
        self._by_agent[agent.agent_id] = agent.client_id

    async def get(self, client_id: str) -> AgentRecord | None:
        found = self._by_client.get(client_id)
        return _copy(found) if found is not None else None

    async def get_by_agent_id(self, agent_id: str) -> AgentRecord | None:
        client_id = self._by_agent.get(agent_id)
        return await self.get(client_id) if client_id is not None else None

    async def update(self, agent: AgentRecord) -> None:
        if agent.client_id in self._by_client:
            self._by_client[agent.client_id] = _copy(agent)

    async def list(self, status: AgentState | None = None) -> list[AgentRecord]:
        return [_copy(a) for a in self._by_client.values() if status is None or a.status == status]


class MemorySessionStore:
    """Sessions in a dict."""

    def __init__(self) -> None:
        self._sessions: dict[str, SessionRecord] = {}

    async def insert(self, session: SessionRecord) -> None:
        self._sessions[session.session_id] = _copy(session)

    async def get(self, session_id: str) -> SessionRecord | None:
        found = self._sessions.get(session_id)
        return _copy(found) if found is not None else None

    async def get_by_state_hash(self, oauth_state_hash: str) -> SessionRecord | None:
        for session in self._sessions.values():
            if session.oauth_state_hash == oauth_state_hash:
                return _copy(session)
        return None

    async def transition(
        self,
        session_id: str,
        from_status: SessionState,
        to_status: SessionState,
        **fields: Any,
    ) -> bool:
        session = self._sessions.get(session_id)
        if session is None or session.status != from_status:
            return False
        session.status = to_status
        for name, value in fields.items():
            setattr(session, name, copy.deepcopy(value))
        return True

    async def delete_expired(self, before: float) -> int:
        gone = [s for s in self._sessions.values() if s.expires_at < before]
        for session in gone:
            del self._sessions[session.session_id]
        return len(gone)


class MemoryTokenStore:
    """Tokens in a dict keyed by hash."""

    def __init__(self) -> None:
        self._by_hash: dict[str, TokenRecord] = {}
        self._by_id: dict[str, TokenRecord] = {}

    async def insert(self, token: TokenRecord) -> None:
        stored = _copy(token)
        self._by_hash[token.token_hash] = stored
        self._by_id[token.token_id] = stored

    async def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        found = self._by_hash.get(token_hash)
        return _copy(found) if found is not None else None

    async def get(self, token_id: str) -> TokenRecord | None:
        found = self._by_id.get(token_id)
        return _copy(found) if found is not None else None

    async def revoke(self, token_id: str, at: float, by: str) -> bool:
        token = self._by_id.get(token_id)
        if token is None or token.revoked_at is not None:
            return False
        token.revoked_at, token.revoked_by = at, by
        return True

    async def revoke_matching(
        self, at: float, by: str, *, client_id: str, user_id: str | None = None
    ) -> int:
        count = 0
        for token in self._by_id.values():
            if token.client_id != client_id or token.revoked_at is not None:
                continue
            if user_id is not None and token.user_id != user_id:
                continue
            token.revoked_at, token.revoked_by = at, by
            count += 1
        return count

    async def list(self, **query: Unpack[TokenQuery]) -> list[TokenRecord]:
        client_id, user_id = query.get("client_id"), query.get("user_id")
        provider_id, active_at = query.get("provider_id"), query.get("active_at")
        found = [
            t
            for t in self._by_id.values()
            if (client_id is None or t.client_id == client_id)
            and (user_id is None or t.user_id == user_id)
            and (provider_id is None or t.provider_id == provider_id)
            and (active_at is None or (t.revoked_at is None and t.expires_at > active_at))
        ]
        found.sort(key=lambda t: t.created_at, reverse=True)
        return [_copy(t) for t in found[: query.get("limit", 100)]]

    async def count_active(self, at: float) -> int:
        return sum(1 for t in self._by_id.values() if t.revoked_at is None and t.expires_at > at)


class MemoryGrantStore:
    """Provider grants in a dict."""

    def __init__(self) -> None:
        self._grants: dict[str, ProviderGrant] = {}

    async def upsert(self, grant: ProviderGrant) -> ProviderGrant:
        for existing in self._grants.values():
            if (existing.client_id, existing.user_id, existing.provider_id) == (
                grant.client_id,
                grant.user_id,
                grant.provider_id,
            ):
                if existing.grant_id != grant.grant_id:
                    return _copy(existing)  # another id: left untouched, as SqlGrantStore does
                merged = _copy(grant)
                merged.created_at = existing.created_at
                self._grants[existing.grant_id] = merged
                return _copy(merged)
        self._grants[grant.grant_id] = _copy(grant)
        return _copy(grant)

    async def get(self, grant_id: str) -> ProviderGrant | None:
        found = self._grants.get(grant_id)
        return _copy(found) if found is not None else None

    async def update(self, grant: ProviderGrant) -> None:
        if grant.grant_id in self._grants:
            self._grants[grant.grant_id] = _copy(grant)

    async def list_for_user(self, user_id: str) -> list[ProviderGrant]:
        return [_copy(g) for g in self._grants.values() if g.user_id == user_id]

    async def claim_refresh(self, grant_id: str, seen_updated_at: float, until: float) -> bool:
        grant = self._grants.get(grant_id)
        if grant is None or grant.updated_at != seen_updated_at:
            return False
        grant.updated_at = until
        return True

    async def delete(self, grant_id: str) -> None:
        self._grants.pop(grant_id, None)


class MemoryAuditStore:
    """Audit events in a list."""

    def __init__(self) -> None:
        self._events: list[AuditEvent] = []
        self._ids = itertools.count(1)

    async def append(self, event: AuditEvent) -> None:
        stored = _copy(event)
        stored.event_id = next(self._ids)
        self._events.append(stored)

    async def append_many(self, events: Sequence[AuditEvent]) -> None:
        for event in events:
            await self.append(event)

    async def query(self, query: AuditQuery) -> Sequence[AuditEvent]:
        found: list[AuditEvent] = []
        for event in reversed(self._events):
            if query.agent_id is not None and event.agent_id != query.agent_id:
                continue
            if query.user_id is not None and event.user_id != query.user_id:
                continue
            if query.provider_id is not None and event.provider_id != query.provider_id:
                continue
            if query.event is not None and event.event != query.event:
                continue
            if query.since is not None and event.timestamp < query.since:
                continue
            if query.until is not None and event.timestamp > query.until:
                continue
            if query.before_id is not None and (event.event_id or 0) >= query.before_id:
                continue
            found.append(_copy(event))
            if len(found) >= query.limit:
                break
        return found


def memory_stores() -> EngineStores:
    """A fresh set of in-memory stores."""
    return EngineStores(
        agents=MemoryAgentStore(),
        sessions=MemorySessionStore(),
        tokens=MemoryTokenStore(),
        grants=MemoryGrantStore(),
        audit=MemoryAuditStore(),
    )
