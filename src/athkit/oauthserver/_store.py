"""Persistence of pending requests, codes and tokens, over one async SQLAlchemy engine.

Every secret (request id, code, token) is looked up by its SHA-256 hash; the plain values exist
only in the responses that hand them out. Single-use and rotation are decided by conditional
``UPDATE``s, so two racing requests cannot both win.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import RowMapping, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.oauthserver._tables import auth_requests, codes, login_failures, tokens
from athkit.protocol import generate_secret, hash_secret
from athkit.storage import FailedSignIns

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Record = TypeVar("_Record", bound="DataclassInstance")


def _from_row(cls: type[_Record], row: RowMapping, **computed: Any) -> _Record:
    """A record from its table row: each field from the column of the same name, ``scopes``
    from the space-separated ``scope`` column, and the ``computed`` fields as given."""
    values: dict[str, Any] = {"scopes": tuple(row["scope"].split()), **computed}
    for field in fields(cls):
        if field.name not in values:
            values[field.name] = row[field.name]
    return cls(**values)


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """An authorization request waiting for login and consent."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str
    resource: str | None
    context: dict[str, Any] | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """A stored authorization code."""

    grant_id: str
    client_id: str
    sub: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str
    resource: str | None
    expires_at: float
    used_at: float | None


@dataclass(frozen=True, slots=True)
class OAuthTokenRecord:
    """A stored access or refresh token."""

    token_hash: str
    kind: str
    grant_id: str
    client_id: str
    sub: str
    scopes: tuple[str, ...]
    resource: str | None
    issued_at: float
    expires_at: float
    revoked_at: float | None
    rotated_at: float | None

    def active(self, now: float) -> bool:
        """Not revoked, not rotated away and not expired."""
        return self.revoked_at is None and self.rotated_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """The plain tokens of one token response."""

    access_token: str
    refresh_token: str


class OAuthStore:
    """The OAuth server's records."""

    def __init__(self, db: AsyncEngine) -> None:
        self._engine = db
        self._failures = FailedSignIns(db, login_failures)

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def purge_expired(self, now: float) -> None:
        """Forget pending requests and codes past their life, and tokens a day past theirs."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(auth_requests).where(auth_requests.c.expires_at < now))
            await conn.execute(delete(codes).where(codes.c.expires_at < now - 3600))
            await conn.execute(delete(tokens).where(tokens.c.expires_at < now - 86400))
            await conn.execute(
                delete(login_failures).where(login_failures.c.window_start < now - 86400)
            )

    # --- failed sign-ins ---------------------------------------------------------------------

    async def login_failures(self, username: str, *, now: float, window: int) -> int:
        """How many sign-ins for ``username`` failed in the current window."""
        return await self._failures.count({"username": username}, now=now, window=window)

    async def record_login_failure(self, username: str, *, now: float, window: int) -> None:
        """Count one failed sign-in; a window that has passed starts again at one."""
        await self._failures.record({"username": username}, now=now, window=window)

    async def clear_login_failures(self, username: str) -> None:
        """Forget the failures of a user who just signed in."""
        await self._failures.clear({"username": username})

    # --- pending authorization requests ------------------------------------------------------

    async def save_request(self, browser_id: str, request: PendingRequest, *, now: float) -> str:
        """Store a pending request for this browser; return its (plain) id."""
        request_id = generate_secret(nbytes=24)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(auth_requests).values(
                    id_hash=hash_secret(request_id),
                    browser_id=browser_id,
                    client_id=request.client_id,
                    redirect_uri=request.redirect_uri,
                    scope=" ".join(request.scopes),
                    state=request.state,
                    code_challenge=request.code_challenge,
                    resource=request.resource,
                    context=None if request.context is None else json.dumps(request.context),
                    created_at=now,
                    expires_at=request.expires_at,
                )
            )
        return request_id

    async def load_request(
        self, request_id: str, browser_id: str, *, now: float
    ) -> PendingRequest | None:
        """The pending request, if it exists, is this browser's and has not expired."""
        async with self._engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(auth_requests).where(
                            auth_requests.c.id_hash == hash_secret(request_id)
                        )
                    )
                )
                .mappings()
                .first()
            )
        if row is None or row["browser_id"] != browser_id or row["expires_at"] <= now:
            return None
        context = None if row["context"] is None else json.loads(row["context"])
        return _from_row(PendingRequest, row, context=context)

    async def take_request(self, request_id: str, browser_id: str) -> bool:
        """Consume a pending request (single use); ``False`` if someone else already did."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(auth_requests).where(
                    auth_requests.c.id_hash == hash_secret(request_id),
                    auth_requests.c.browser_id == browser_id,
                )
            )
        return result.rowcount == 1

    # --- authorization codes -----------------------------------------------------------------

    async def save_code(
        self,
        *,
        client_id: str,
        sub: str,
        redirect_uri: str,
        scopes: list[str],
        code_challenge: str,
        resource: str | None,
        agent_id: str | None,
        now: float,
        lifetime: int,
    ) -> str:
        """Store a new authorization code; return the plain code."""
        code = generate_secret(nbytes=32)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(codes).values(
                    code_hash=hash_secret(code),
                    grant_id=generate_secret(nbytes=18),
                    client_id=client_id,
                    sub=sub,
                    redirect_uri=redirect_uri,
                    scope=" ".join(scopes),
                    code_challenge=code_challenge,
                    resource=resource,
                    agent_id=agent_id,
                    created_at=now,
                    expires_at=now + lifetime,
                    used_at=None,
                )
            )
        return code

    async def mark_code_reused(self, code: str, *, now: float) -> None:
        """Note that a spent code came back (its grant is being revoked)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(codes).where(codes.c.code_hash == hash_secret(code)).values(reused_at=now)
            )

    async def code_was_reused(self, code: str) -> bool:
        """Whether a second redemption of ``code`` has been attempted."""
        async with self._engine.connect() as conn:
            reused = (
                await conn.execute(
                    select(codes.c.reused_at).where(codes.c.code_hash == hash_secret(code))
                )
            ).scalar()
        return reused is not None

    async def redeem_code(self, code: str, *, now: float) -> tuple[CodeRecord | None, bool]:
        """Look a code up and mark it used; the flag says whether *this* call was first."""
        code_hash = hash_secret(code)
        async with self._engine.begin() as conn:
            row = (
                (await conn.execute(select(codes).where(codes.c.code_hash == code_hash)))
                .mappings()
                .first()
            )
            if row is None:
                return None, False
            result = await conn.execute(
                update(codes)
                .where(codes.c.code_hash == code_hash, codes.c.used_at.is_(None))
                .values(used_at=now)
            )
        record = _from_row(CodeRecord, row)
        return record, result.rowcount == 1

    # --- tokens ------------------------------------------------------------------------------

    async def issue_tokens(
        self,
        *,
        grant_id: str,
        client_id: str,
        sub: str,
        access_scopes: list[str],
        refresh_scopes: list[str],
        resource: str | None,
        now: float,
        access_lifetime: int,
        refresh_lifetime: int,
    ) -> IssuedTokens:
        """Store and return a new access token and refresh token of one grant."""
        access = generate_secret("athoa_at_")
        refresh = generate_secret("athoa_rt_")
        common = {
            "grant_id": grant_id,
            "client_id": client_id,
            "sub": sub,
            "resource": resource,
            "issued_at": now,
            "revoked_at": None,
            "rotated_at": None,
        }
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(tokens),
                [
                    {
                        **common,
                        "token_hash": hash_secret(access),
                        "kind": "access",
                        "scope": " ".join(access_scopes),
                        "expires_at": now + access_lifetime,
                    },
                    {
                        **common,
                        "token_hash": hash_secret(refresh),
                        "kind": "refresh",
                        "scope": " ".join(refresh_scopes),
                        "expires_at": now + refresh_lifetime,
                    },
                ],
            )
        return IssuedTokens(access_token=access, refresh_token=refresh)

    async def find_token(self, token: str) -> OAuthTokenRecord | None:
        """The record of a presented token, whatever its state."""
        async with self._engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(tokens).where(tokens.c.token_hash == hash_secret(token))
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return _from_row(OAuthTokenRecord, row)

    async def rotate_refresh(self, token_hash: str, *, now: float) -> bool:
        """Retire a refresh token on use; ``False`` if it was already rotated or revoked."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(tokens)
                .where(
                    tokens.c.token_hash == token_hash,
                    tokens.c.kind == "refresh",
                    tokens.c.rotated_at.is_(None),
                    tokens.c.revoked_at.is_(None),
                )
                .values(rotated_at=now)
            )
        return result.rowcount == 1

    async def revoke_token(self, token_hash: str, *, now: float) -> None:
        """Revoke one token."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(tokens)
                .where(tokens.c.token_hash == token_hash, tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    async def revoke_grant(self, grant_id: str, *, now: float) -> int:
        """Revoke every token of a grant (code reuse, refresh reuse, refresh revocation)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(tokens)
                .where(tokens.c.grant_id == grant_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return int(result.rowcount)
