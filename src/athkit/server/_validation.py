"""Checking an ATH access token on an agent's API call (ATH §4.6 steps 1–3)."""

from __future__ import annotations

import hmac

from athkit.protocol import ErrorCode, hash_secret, same_agent_id
from athkit.server._audit import AuditContext
from athkit.server._core import ACCESS_TOKEN_PREFIX, EngineCore, ath_error
from athkit.server._records import TokenInfo


class TokenChecks(EngineCore):
    """``validate_token``: the store's word on a token, on every call."""

    async def validate_token(
        self, token: str, *, agent_id: str | None = None, provider_id: str | None = None
    ) -> TokenInfo:
        """Check an ATH access token: it exists, is not revoked, not expired, and — when given —
        belongs to ``agent_id`` (``X-ATH-Agent-ID``; ``""`` means the header was missing) and
        ``provider_id`` (ATH §4.6 steps 1–3).

        Raises ``TOKEN_INVALID``, ``TOKEN_REVOKED``, ``TOKEN_EXPIRED``,
        ``AGENT_IDENTITY_MISMATCH`` or ``PROVIDER_MISMATCH``. Never cached: a revocation takes
        effect on the next call.
        """
        ctx = AuditContext("access_denied", agent_id=agent_id or None, provider_id=provider_id)
        try:  # the hot path of every API call: EngineCore._run, inlined
            return await self._validate_token(token, agent_id, provider_id, ctx)
        except Exception as exc:
            raise await self.audit_log.failed(ctx, exc, self.clock.now()) from None

    async def _validate_token(
        self, token: str, agent_id: str | None, provider_id: str | None, ctx: AuditContext
    ) -> TokenInfo:
        if not token.startswith(ACCESS_TOKEN_PREFIX) or len(token) > 512:
            raise ath_error(
                ErrorCode.TOKEN_INVALID, "not an ATH access token", reason="malformed_token"
            )
        # ATH §4.7: a revoked token is unusable at once, so validity is read from the store on
        # every call and never cached.
        record = await self.stores.tokens.get_by_hash(hash_secret(token))
        if record is None:
            raise ath_error(ErrorCode.TOKEN_INVALID, "unknown access token", reason="unknown_token")
        ctx.client_id, ctx.user_id = record.client_id, record.user_id
        ctx.requested = list(record.scopes)
        if not agent_id:
            ctx.agent_id = record.agent_id
        if provider_id is None:
            ctx.provider_id = record.provider_id
        if record.revoked_at is not None:
            raise ath_error(
                ErrorCode.TOKEN_REVOKED,
                "the access token was revoked",
                reason="token_revoked",
                revoked_by=record.revoked_by,
            )
        if record.expires_at <= self.clock.now():
            raise ath_error(
                ErrorCode.TOKEN_EXPIRED,
                "the access token has expired; authorize again",
                reason="token_expired",
            )
        # ATH §4.6 step 2 / §6: a token from one agent is useless for another.
        if agent_id == "":
            raise ath_error(
                ErrorCode.AGENT_IDENTITY_MISMATCH,
                "send the calling agent's agent_id as the X-ATH-Agent-ID header",
                reason="missing_agent_id",
            )
        # ATH §2: the header is compared in canonical form (the record's agent_id is canonical).
        if agent_id is not None and not (
            hmac.compare_digest(
                agent_id.encode("utf-8", "surrogateescape"), record.agent_id.encode("utf-8")
            )
            or same_agent_id(agent_id, record.agent_id, allow_query=True)
        ):
            raise ath_error(
                ErrorCode.AGENT_IDENTITY_MISMATCH,
                "the token belongs to another agent",
                reason="agent_mismatch",
            )
        # ATH §4.6 step 3.
        if provider_id is not None and provider_id != record.provider_id:
            raise ath_error(
                ErrorCode.PROVIDER_MISMATCH,
                "the token belongs to another provider",
                reason="provider_mismatch",
            )
        return TokenInfo(
            token_id=record.token_id,
            client_id=record.client_id,
            agent_id=record.agent_id,
            user_id=record.user_id,
            provider_id=record.provider_id,
            scopes=tuple(record.scopes),
            expires_at=record.expires_at,
            grant_id=record.grant_id,
        )

    # --- the user's provider grant (gateway proxy) ----------------------------------------
