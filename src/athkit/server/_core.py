"""What every part of the engine shares: its dependencies, the fail-closed audited call, and the
checks that more than one actor's methods make (client authentication, approval, session state).

``ATHEngine`` (``_engine.py``) is assembled from one class per actor, each built on
:class:`EngineCore`: the agent (``_handshake.py``), the user's browser (``_browser.py``), the
operator (``_operator.py``) and every API call (``_validation.py``); the provider tokens are in
the custody of a :class:`~athkit.server._vault.ProviderVault`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import SplitResult, urlsplit

from athkit.protocol import (
    CONSENT_PATH,
    ApprovedProvider,
    ATHError,
    ErrorCode,
    hash_secret,
    secret_matches,
)
from athkit.server._audit import AuditContext, AuditLog
from athkit.server._clock import Clock, SystemClock
from athkit.server._consent import SignedConsentContext
from athkit.server._crypto import TokenCipher
from athkit.server._oauth import HttpOAuthBridge, OAuthBridge
from athkit.server._policy import ApprovalPolicy
from athkit.server._ports import AgentVerifier, ConsentContextFactory, VerifiedAgentLike
from athkit.server._records import AgentRecord, SessionRecord, TokenInfo, TokenRecord
from athkit.server._settings import ProviderSettings, ServerSettings
from athkit.server._stores import EngineStores
from athkit.server._vault import ProviderVault

_T = TypeVar("_T")
_log = logging.getLogger("athkit.server")

ACCESS_TOKEN_PREFIX = "ath_at_"
CLIENT_SECRET_PREFIX = "ath_cs_"
ATH_CODE_PREFIX = "ath_code_"
# Compared against when a client_id is unknown, so a miss costs what a hit costs.
_DUMMY_SECRET_HASH = hash_secret("athkit: no such client")


def ath_error(code: ErrorCode, message: str, **details: object) -> ATHError:
    """An :class:`ATHError` whose keyword arguments are its ``details``."""
    return ATHError(code, message, details=dict(details))


def iso(ts: float) -> datetime:
    """POSIX seconds as an aware UTC datetime (ISO 8601 in JSON)."""
    return datetime.fromtimestamp(ts, tz=UTC)


def secret_hash_matches(presented: str, stored_hash: str | None) -> bool:
    """Constant-time compare of a presented secret against a stored SHA-256 hash (the same
    work whether or not there is a stored hash)."""
    return secret_matches(presented, stored_hash or _DUMMY_SECRET_HASH) and stored_hash is not None


def session_used(message: str = "this authorization link was already used") -> ATHError:
    """``SESSION_NOT_FOUND`` for a session past the step being attempted (ATH §4.5 single-use)."""
    return ath_error(ErrorCode.SESSION_NOT_FOUND, message, reason="session_used")


def _same_endpoint(a: str, b: str) -> bool:
    try:
        pa, pb = urlsplit(a), urlsplit(b)
        ports = (pa.port, pb.port)
    except ValueError:
        return False
    defaults = {"https": 443, "http": 80}

    def key(parts: SplitResult, port: int | None) -> tuple[str, str | None, int | None, str]:
        scheme = parts.scheme.lower()
        return (scheme, parts.hostname, port or defaults.get(scheme), parts.path.rstrip("/"))

    return (
        not pa.query
        and not pa.fragment
        and pa.username is None
        and key(pa, ports[0]) == key(pb, ports[1])
    )


def approved_providers(agent: AgentRecord) -> list[ApprovedProvider]:
    """The registration's per-provider decisions as the protocol answers them (ATH §4.1)."""
    return [
        ApprovedProvider(
            provider_id=a.provider_id,
            approved_scopes=list(a.approved_scopes),
            denied_scopes=list(a.denied_scopes),
            denial_reason=a.denial_reason
            or ("awaiting operator review" if a.pending_scopes else None),
            pending_scopes=list(a.pending_scopes),
        )
        for a in agent.providers
    ]


class EngineCore:
    """The engine's dependencies and shared checks (see the module docstring)."""

    def __init__(
        self,
        settings: ServerSettings,
        *,
        stores: EngineStores,
        verifier: AgentVerifier,
        policy: ApprovalPolicy | None = None,
        oauth: OAuthBridge | None = None,
        audit_logger: logging.Logger | None = None,
        clock: Clock | None = None,
        consent_context: ConsentContextFactory | None = None,
    ) -> None:
        self.settings = settings
        self.stores = stores
        self.verifier = verifier
        self.policy = policy or ApprovalPolicy(settings.providers)
        self.oauth: OAuthBridge = oauth or HttpOAuthBridge()
        self.audit_log = AuditLog(stores.audit, audit_logger)
        self.clock: Clock = clock or SystemClock()
        if consent_context is None:
            signing_key = settings.load_consent_signing_key()
            if signing_key is not None:
                consent_context = SignedConsentContext(signing_key, self.clock)
        self.consent_context = consent_context
        self.vault = ProviderVault(
            stores.grants,
            TokenCipher(settings.secret_key.get_secret_value()),
            self.oauth,
            self.clock,
            self.policy.provider,
        )

    @property
    def base_url(self) -> str:
        """The public base URL (no trailing slash): the audience of register/authorize/status."""
        return self.settings.base_url

    def is_own_callback(self, uri: str) -> bool:
        """Whether ``uri`` is this implementer's own ``/ath/callback`` (scheme and host in any
        case, default port or not, one trailing ``/``), which as an agent's redirect URI means
        "no redirect" (ATH §4.4, our decision)."""
        return _same_endpoint(uri, self.settings.callback_url)

    def consent_url(self, session_id: str) -> str:
        """``{base}/ath/consent/{session_id}``: the link handed to the user's browser."""
        return f"{self.base_url}{CONSENT_PATH}{session_id}"

    def _provider(self, provider_id: str) -> ProviderSettings | None:
        return self.policy.provider(provider_id)

    async def audit(self, event: str, **fields: object) -> None:
        """Record an audit event (also for the gateway's ``proxy_request``/``scope_violation``).

        Accepts the fields of :class:`AuditEvent` except ``timestamp``.
        """
        await self.audit_log.event(event, self.clock.now(), **fields)

    async def record_refusal(
        self, refusal: ATHError, *, reason: str | None = None, **fields: object
    ) -> ATHError:
        """Store a refusal that its caller made itself (the engine's own calls audit theirs) as
        ``access_denied`` before it is answered, with ``reason`` (default: the refusal's
        ``details.reason``, else its message). Returns what to answer: the refusal, or the audit
        store's 503 if it cannot be stored (fail closed: no refusal goes unrecorded)."""
        try:
            await self.audit(
                "access_denied",
                reason=reason or str(refusal.details.get("reason", refusal.message)),
                code=refusal.code.value,
                **fields,
            )
        except ATHError as failure:
            return failure
        except Exception:
            _log.exception("audit store failed while recording a refusal")
            return ATHError(
                ErrorCode.INTERNAL_ERROR,
                "the audit store is unavailable, so calls are refused",
                details={"reason": "audit_unavailable"},
                status=503,
            )
        return refusal

    async def audit_token(
        self, event: str, token: TokenRecord | TokenInfo, **fields: object
    ) -> None:
        """Record an audit event about a call made with ``token``: its agent, client, user and
        provider, plus ``fields``."""
        await self.audit(
            event,
            agent_id=token.agent_id,
            client_id=token.client_id,
            user_id=token.user_id,
            provider_id=token.provider_id,
            **fields,
        )

    async def audit_session(self, event: str, session: SessionRecord, **fields: object) -> None:
        """Record an audit event about an ATH session: its agent, client, provider and the
        scopes it asked for, plus ``fields``."""
        await self.audit(
            event,
            agent_id=session.agent_id,
            client_id=session.client_id,
            provider_id=session.provider_id,
            requested_scopes=list(session.requested_scopes),
            **fields,
        )

    async def _run(self, call: AuditContext, work: Awaitable[_T]) -> _T:
        return await self.audit_log.run(call, work, self.clock.now)

    async def _verify(
        self, token: str, audience: str, expected_agent_id: str | None
    ) -> VerifiedAgentLike:
        return await self.verifier.verify(
            token, audience=audience, expected_agent_id=expected_agent_id
        )

    def _require_approved(self, agent: AgentRecord) -> None:
        # ATH §4.3: the agent is registered and its agent_status is "approved".
        if agent.status != "approved":
            raise ath_error(
                ErrorCode.AGENT_UNAPPROVED,
                f"agent registration is {agent.status}; an operator must approve it first",
                reason=f"agent_{agent.status}",
                agent_status=agent.status,
            )
        if agent.approval_expires <= self.clock.now():
            raise ath_error(
                ErrorCode.AGENT_UNAPPROVED,
                "the agent's approval has expired; register again or ask the operator",
                reason="approval_expired",
            )

    async def _authenticate_client(self, client_id: str, client_secret: str) -> AgentRecord:
        agent = await self.stores.agents.get(client_id)
        # Constant time whether or not the client exists.
        ok = secret_hash_matches(client_secret, agent.client_secret_hash if agent else None)
        if agent is None or not ok:
            raise ath_error(
                ErrorCode.INVALID_CLIENT,
                "client authentication failed",
                reason="bad_client_credentials",
            )
        return agent

    def _check_session(
        self,
        session: SessionRecord | None,
        call: AuditContext,
        *,
        missing: ATHError,
        expired_message: str,
    ) -> SessionRecord:
        """The session exists (else ``missing``) and has not expired (``SESSION_EXPIRED``);
        ``call`` learns whom it is about."""
        if session is None:
            raise missing
        call.agent_id, call.client_id = session.agent_id, session.client_id
        call.provider_id, call.requested = session.provider_id, list(session.requested_scopes)
        if session.user_id is not None:
            call.user_id = session.user_id
        if session.expires_at <= self.clock.now():
            raise ath_error(ErrorCode.SESSION_EXPIRED, expired_message, reason="session_expired")
        return session

    async def _session_parties(
        self, session: SessionRecord
    ) -> tuple[AgentRecord, ProviderSettings]:
        """The session's agent and provider, both still there (else ``SESSION_NOT_FOUND``)."""
        agent = await self.stores.agents.get(session.client_id)
        provider = self._provider(session.provider_id)
        if agent is None or provider is None:
            raise ath_error(
                ErrorCode.SESSION_NOT_FOUND,
                "the session's agent or provider is gone",
                reason="session_orphaned",
            )
        return agent, provider

    async def _revoke_one(self, token: TokenRecord, by: str) -> bool:
        changed = await self.stores.tokens.revoke(token.token_id, self.clock.now(), by)
        if changed:
            self.vault.forget(token.token_id)
            await self.audit_token(
                "token_revoked",
                token,
                effective_scopes=list(token.scopes),
                reason=f"revoked by {by}",
                details={"token_id": token.token_id},
            )
        return changed
