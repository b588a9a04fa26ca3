"""SQL stores (SQLAlchemy 2 async Core): SQLite file by default, PostgreSQL too.

Tables live in the shared ``athkit.server._tables.metadata`` and are created by the server's
Alembic migrations. Lists are JSON columns; times are POSIX seconds. Compare-and-set transitions
are single ``UPDATE … WHERE status = :from`` statements, so they hold across processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any, Generic, TypeVar, Unpack

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.server._auditwrite import audit_writer, without_nul
from athkit.server._fastpath import FastPathUnavailable
from athkit.server._faults import database_call
from athkit.server._records import (
    AgentRecord,
    AgentState,
    AuditEvent,
    ProviderApproval,
    ProviderGrant,
    SessionRecord,
    SessionState,
    TokenRecord,
)
from athkit.server._stores import AuditQuery, DuplicateAgentError, EngineStores, TokenQuery
from athkit.server._tables import metadata
from athkit.server._tokenread import token_reader

_T = TypeVar("_T")
_R = TypeVar("_R")
_Id = sa.String(128)
_Url = sa.String(2048)
_Hash = sa.String(64)
_Time = sa.Float(precision=53)

agents_table = sa.Table(
    "ath_agents",
    metadata,
    sa.Column("client_id", _Id, primary_key=True),
    sa.Column("agent_id", _Url, nullable=False, unique=True),
    sa.Column("agent_name", sa.String(256), nullable=False),
    sa.Column("developer_name", sa.String(256), nullable=False),
    sa.Column("developer_id", sa.String(256), nullable=False),
    sa.Column("developer_contact", sa.String(256)),
    sa.Column("client_secret_hash", _Hash, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("status_reason", sa.Text),
    sa.Column("providers", sa.JSON, nullable=False),
    sa.Column("redirect_uris", sa.JSON),
    sa.Column("purpose", sa.Text),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("updated_at", _Time, nullable=False),
    sa.Column("approval_expires", _Time, nullable=False),
)

sessions_table = sa.Table(
    "ath_sessions",
    metadata,
    sa.Column("session_id", _Id, primary_key=True),
    sa.Column("client_id", _Id, nullable=False, index=True),
    sa.Column("agent_id", _Url, nullable=False),
    sa.Column("provider_id", _Id, nullable=False),
    sa.Column("requested_scopes", sa.JSON, nullable=False),
    sa.Column("agent_state", sa.String(512), nullable=False),
    sa.Column("code_verifier", sa.String(128), nullable=False),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("expires_at", _Time, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("oauth_state_hash", _Hash, unique=True),
    sa.Column("user_redirect_uri", _Url),
    sa.Column("resource", _Url),
    sa.Column("binding_hash", _Hash),
    sa.Column("ath_code_hash", _Hash),
    sa.Column("user_id", sa.String(256)),
    sa.Column("consented_scopes", sa.JSON),
    sa.Column("grant_id", _Id),
    sa.Column("failure_reason", sa.String(256)),
)

tokens_table = sa.Table(
    "ath_tokens",
    metadata,
    sa.Column("token_id", _Id, primary_key=True),
    sa.Column("token_hash", _Hash, nullable=False, unique=True),
    sa.Column("client_id", _Id, nullable=False, index=True),
    sa.Column("agent_id", _Url, nullable=False),
    sa.Column("user_id", sa.String(256), nullable=False, index=True),
    sa.Column("provider_id", _Id, nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("expires_at", _Time, nullable=False),
    sa.Column("grant_id", _Id),
    sa.Column("session_id", _Id),
    sa.Column("revoked_at", _Time),
    sa.Column("revoked_by", sa.String(32)),
)

grants_table = sa.Table(
    "ath_provider_grants",
    metadata,
    sa.Column("grant_id", _Id, primary_key=True),
    sa.Column("client_id", _Id, nullable=False),
    sa.Column("agent_id", _Url, nullable=False),
    sa.Column("user_id", sa.String(256), nullable=False, index=True),
    sa.Column("provider_id", _Id, nullable=False),
    sa.Column("consented_scopes", sa.JSON, nullable=False),
    sa.Column("access_token_enc", sa.Text, nullable=False),
    sa.Column("refresh_token_enc", sa.Text),
    sa.Column("token_type", sa.String(32), nullable=False),
    sa.Column("expires_at", _Time),
    sa.Column("needs_user", sa.Boolean, nullable=False),
    sa.Column("needs_user_reason", sa.String(256)),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("updated_at", _Time, nullable=False),
    sa.UniqueConstraint("client_id", "user_id", "provider_id", name="uq_ath_grant_owner"),
)

audit_table = sa.Table(
    "ath_audit_events",
    metadata,
    sa.Column(
        "event_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("event", sa.String(64), nullable=False, index=True),
    sa.Column("timestamp", _Time, nullable=False, index=True),
    sa.Column("agent_id", _Url, index=True),
    sa.Column("client_id", _Id),
    sa.Column("user_id", sa.String(256), index=True),
    sa.Column("provider_id", _Id),
    sa.Column("requested_scopes", sa.JSON, nullable=False),
    sa.Column("effective_scopes", sa.JSON, nullable=False),
    sa.Column("denied_scopes", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("code", sa.String(64)),
    sa.Column("details", sa.JSON, nullable=False),
)


def _values(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _load(cls: type[_T], row: sa.Row[Any]) -> _T:
    data = dict(row._mapping)
    return cls(**data)


def _agent_values(agent: AgentRecord) -> dict[str, Any]:
    values = _values(agent)
    values["providers"] = [_values(p) for p in agent.providers]
    return values


def _load_agent(row: sa.Row[Any]) -> AgentRecord:
    data = dict(row._mapping)
    data["providers"] = [ProviderApproval(**p) for p in data["providers"]]
    return AgentRecord(**data)


class _SqlStore:
    """What every SQL store holds: the engine, and an autocommit view of it."""

    def __init__(self, db: AsyncEngine) -> None:
        self._engine = db
        # Single statements run in autocommit: no BEGIN/COMMIT round trips around them (each
        # statement is atomic on its own); several statements that must agree use _engine.
        self._auto = db.execution_options(isolation_level="AUTOCOMMIT")

    async def _first(self, query: sa.Select[Any]) -> sa.Row[Any] | None:
        """The first row of one ``SELECT``, in autocommit."""
        async with self._auto.connect() as conn:
            row: sa.Row[Any] | None = (await conn.execute(query)).first()
        return row

    async def _all(self, query: sa.Select[Any]) -> Sequence[sa.Row[Any]]:
        """Every row of one ``SELECT``, in autocommit."""
        async with self._auto.connect() as conn:
            rows: Sequence[sa.Row[Any]] = (await conn.execute(query)).all()
        return rows

    async def _write(self, statement: sa.Executable) -> int:
        """Run one ``INSERT``/``UPDATE``/``DELETE`` in autocommit; the rows it touched."""
        async with self._auto.begin() as conn:
            result = await conn.execute(statement)
        return int(result.rowcount)


class _RecordStore(_SqlStore, Generic[_R]):
    """A store of one dataclass record per row of ``_table``."""

    _table: sa.Table
    _record: type[_R]

    @database_call
    async def insert(self, record: _R) -> None:
        await self._write(self._table.insert().values(**_values(record)))

    @database_call
    async def _one(self, where: sa.ColumnElement[bool]) -> _R | None:
        row = await self._first(self._table.select().where(where))
        return _load(self._record, row) if row is not None else None


class SqlAgentStore(_SqlStore):
    """Registrations in ``ath_agents``."""

    @database_call
    async def insert(self, agent: AgentRecord) -> None:
        try:
            async with self._auto.begin() as conn:
                await conn.execute(agents_table.insert().values(**_agent_values(agent)))
        except IntegrityError:
            raise DuplicateAgentError(agent.agent_id) from None

    @database_call
    async def get(self, client_id: str) -> AgentRecord | None:
        row = await self._first(agents_table.select().where(agents_table.c.client_id == client_id))
        return _load_agent(row) if row is not None else None

    @database_call
    async def get_by_agent_id(self, agent_id: str) -> AgentRecord | None:
        row = await self._first(agents_table.select().where(agents_table.c.agent_id == agent_id))
        return _load_agent(row) if row is not None else None

    @database_call
    async def update(self, agent: AgentRecord) -> None:
        values = _agent_values(agent)
        del values["client_id"]
        await self._write(
            agents_table.update()
            .where(agents_table.c.client_id == agent.client_id)
            .values(**values)
        )

    @database_call
    async def list(self, status: AgentState | None = None) -> list[AgentRecord]:
        query = agents_table.select().order_by(agents_table.c.created_at)
        if status is not None:
            query = query.where(agents_table.c.status == status)
        rows = await self._all(query)
        return [_load_agent(r) for r in rows]


class SqlSessionStore(_RecordStore[SessionRecord]):
    """Sessions in ``ath_sessions``."""

    _table = sessions_table
    _record = SessionRecord

    @database_call
    async def get(self, session_id: str) -> SessionRecord | None:
        return await self._one(sessions_table.c.session_id == session_id)

    @database_call
    async def get_by_state_hash(self, oauth_state_hash: str) -> SessionRecord | None:
        return await self._one(sessions_table.c.oauth_state_hash == oauth_state_hash)

    @database_call
    async def transition(
        self,
        session_id: str,
        from_status: SessionState,
        to_status: SessionState,
        **fields: Any,
    ) -> bool:
        updated = await self._write(
            sessions_table.update()
            .where(
                sessions_table.c.session_id == session_id,
                sessions_table.c.status == from_status,
            )
            .values(status=to_status, **fields)
        )
        return updated == 1

    @database_call
    async def delete_expired(self, before: float) -> int:
        return await self._write(
            sessions_table.delete().where(sessions_table.c.expires_at < before)
        )


class SqlTokenStore(_RecordStore[TokenRecord]):
    """Tokens in ``ath_tokens`` (hashes only); ``get_by_hash`` reads through the database's
    fast path (``athkit.server._tokenread``) and falls back to SQLAlchemy."""

    _table = tokens_table
    _record = TokenRecord

    def __init__(self, db: AsyncEngine) -> None:
        super().__init__(db)
        self._reader = token_reader(db)

    async def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        if self._reader is not None:
            try:  # the fast path turns every fault of its own into FastPathUnavailable
                return await self._reader.get_by_hash(token_hash)
            except FastPathUnavailable:
                pass
        return await self._one(tokens_table.c.token_hash == token_hash)

    @database_call
    async def get(self, token_id: str) -> TokenRecord | None:
        return await self._one(tokens_table.c.token_id == token_id)

    @database_call
    async def revoke(self, token_id: str, at: float, by: str) -> bool:
        return (
            await self._write(
                tokens_table.update()
                .where(tokens_table.c.token_id == token_id, tokens_table.c.revoked_at.is_(None))
                .values(revoked_at=at, revoked_by=by)
            )
            == 1
        )

    @database_call
    async def revoke_matching(
        self, at: float, by: str, *, client_id: str, user_id: str | None = None
    ) -> int:
        query = tokens_table.update().where(
            tokens_table.c.client_id == client_id, tokens_table.c.revoked_at.is_(None)
        )
        if user_id is not None:
            query = query.where(tokens_table.c.user_id == user_id)
        return await self._write(query.values(revoked_at=at, revoked_by=by))

    @database_call
    async def list(self, **query: Unpack[TokenQuery]) -> list[TokenRecord]:
        client_id, user_id = query.get("client_id"), query.get("user_id")
        provider_id, active_at = query.get("provider_id"), query.get("active_at")
        t = tokens_table.c
        select = tokens_table.select().order_by(t.created_at.desc()).limit(query.get("limit", 100))
        if client_id is not None:
            select = select.where(t.client_id == client_id)
        if user_id is not None:
            select = select.where(t.user_id == user_id)
        if provider_id is not None:
            select = select.where(t.provider_id == provider_id)
        if active_at is not None:
            select = select.where(t.revoked_at.is_(None), t.expires_at > active_at)
        rows = await self._all(select)
        return [_load(TokenRecord, r) for r in rows]

    @database_call
    async def count_active(self, at: float) -> int:
        t = tokens_table.c
        query = (
            sa.select(sa.func.count())
            .select_from(tokens_table)
            .where(t.revoked_at.is_(None), t.expires_at > at)
        )
        async with self._auto.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


def _dialect_insert(db: AsyncEngine) -> Any:
    """The dialect's ``insert`` (PostgreSQL or SQLite), which knows ``ON CONFLICT``."""
    if db.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


class SqlGrantStore(_SqlStore):
    """Provider grants in ``ath_provider_grants`` (tokens encrypted by the engine)."""

    @database_call
    async def upsert(self, grant: ProviderGrant) -> ProviderGrant:
        # One statement, one round trip, atomic on its own: insert, or replace the owner's grant
        # if it has this grant_id. A grant of the owner under another id (a concurrent consent
        # won the insert) is left untouched and returned, so the caller seals to its id.
        values = _values(grant)
        g = grants_table.c
        insert = _dialect_insert(self._engine)(grants_table).values(**values)
        replaced = {k: v for k, v in values.items() if k not in ("grant_id", "created_at")}
        statement = insert.on_conflict_do_update(
            index_elements=[g.client_id, g.user_id, g.provider_id],
            set_=replaced,
            where=g.grant_id == grant.grant_id,
        ).returning(g.created_at)
        async with self._auto.begin() as conn:
            created_at = (await conn.execute(statement)).scalar()
            if created_at is not None:
                return dataclasses.replace(grant, created_at=created_at)
            row = (
                await conn.execute(
                    grants_table.select().where(
                        g.client_id == grant.client_id,
                        g.user_id == grant.user_id,
                        g.provider_id == grant.provider_id,
                    )
                )
            ).first()
        if row is None:  # deleted between the two statements: try once more
            return await self.upsert(grant)
        return _load(ProviderGrant, row)

    @database_call
    async def get(self, grant_id: str) -> ProviderGrant | None:
        row = await self._first(grants_table.select().where(grants_table.c.grant_id == grant_id))
        return _load(ProviderGrant, row) if row is not None else None

    @database_call
    async def update(self, grant: ProviderGrant) -> None:
        values = _values(grant)
        del values["grant_id"]
        await self._write(
            grants_table.update().where(grants_table.c.grant_id == grant.grant_id).values(**values)
        )

    @database_call
    async def claim_refresh(self, grant_id: str, seen_updated_at: float, until: float) -> bool:
        g = grants_table.c
        return (
            await self._write(
                grants_table.update()
                .where(g.grant_id == grant_id, g.updated_at == seen_updated_at)
                .values(updated_at=until)
            )
            == 1
        )

    @database_call
    async def list_for_user(self, user_id: str) -> list[ProviderGrant]:
        rows = await self._all(
            grants_table.select()
            .where(grants_table.c.user_id == user_id)
            .order_by(grants_table.c.created_at)
        )
        return [_load(ProviderGrant, r) for r in rows]

    @database_call
    async def delete(self, grant_id: str) -> None:
        await self._write(grants_table.delete().where(grants_table.c.grant_id == grant_id))


def _audit_values(event: AuditEvent) -> dict[str, Any]:
    """The row for ``event``. A rejection is audited with what the client sent, and
    PostgreSQL cannot store NUL in text: NUL becomes U+FFFD, so hostile input is recorded
    rather than making the audit (and so the refusal) fail."""
    values = _values(event)
    del values["event_id"]
    return {k: without_nul(v) for k, v in values.items()}


class SqlAuditStore(_SqlStore):
    """Audit events in ``ath_audit_events``; batches go through the database's fast writer
    (``athkit.server._auditwrite``) and fall back to SQLAlchemy."""

    def __init__(self, db: AsyncEngine) -> None:
        super().__init__(db)
        self._writer = audit_writer(db)

    @database_call
    async def append(self, event: AuditEvent) -> None:
        values = _audit_values(event)
        await self._write(audit_table.insert().values(**values))

    @database_call
    async def append_many(self, events: Sequence[AuditEvent]) -> None:
        """Store several events in one transaction (the gateway batches ``proxy_request``)."""
        if not events:
            return
        if self._writer is not None:
            with contextlib.suppress(FastPathUnavailable):
                await self._writer.write(events)
                return
        rows = []
        for event in events:
            rows.append(_audit_values(event))
        async with self._engine.begin() as conn:
            await conn.execute(audit_table.insert(), rows)

    @database_call
    async def query(self, query: AuditQuery) -> Sequence[AuditEvent]:
        a = audit_table.c
        select = audit_table.select().order_by(a.event_id.desc()).limit(query.limit)
        if query.agent_id is not None:
            select = select.where(a.agent_id == query.agent_id)
        if query.user_id is not None:
            select = select.where(a.user_id == query.user_id)
        if query.provider_id is not None:
            select = select.where(a.provider_id == query.provider_id)
        if query.event is not None:
            select = select.where(a.event == query.event)
        if query.since is not None:
            select = select.where(a.timestamp >= query.since)
        if query.until is not None:
            select = select.where(a.timestamp <= query.until)
        if query.before_id is not None:
            select = select.where(a.event_id < query.before_id)
        rows = await self._all(select)
        return [_load(AuditEvent, r) for r in rows]


async def open_sql_stores(database_url: str) -> tuple[EngineStores, AsyncEngine]:
    """Open ``database_url``, bring its schema up to date (Alembic) and return the stores and
    the engine (dispose it on shutdown)."""
    from athkit.server._schema import migrate_server_schema
    from athkit.storage import create_database

    engine = create_database(database_url)
    await migrate_server_schema(engine)
    return sql_stores(engine), engine


def sql_stores(db: AsyncEngine) -> EngineStores:
    """Every db store over one database (run the server migrations first)."""
    return EngineStores(
        agents=SqlAgentStore(db),
        sessions=SqlSessionStore(db),
        tokens=SqlTokenStore(db),
        grants=SqlGrantStore(db),
        audit=SqlAuditStore(db),
    )
