"""``ATHEngine``: the implementer side of ATH 0.1 (§2–§7) as plain async methods.

Every dependency is passed in (stores, attestation verifier, approval policy, OAuth bridge, audit
logger, clock); nothing is global. Each public method either returns its result or raises
:class:`~athkit.protocol.ATHError`; every rejection is audited (ATH §6). Any other failure — a
store that is down, a bug — is logged and raised as ``INTERNAL_ERROR``, and nothing is issued
(fail closed).

Flow::

    register ─> authorize ─> begin_consent (browser) ─> provider ─> callback ─> exchange_token
                                                                                     │
                         validate_token / provider_credentials  <── agent API calls ─┘
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urlsplit

from athkit.protocol import (
    AgentStatusResponse,
    ApprovedProvider,
    ATHError,
    AuthorizeRequest,
    AuthorizeResponse,
    ErrorCode,
    RegisterRequest,
    RegisterResponse,
    RevokeRequest,
    TokenRequest,
    TokenResponse,
    code_challenge_s256,
    generate_code_verifier,
    generate_secret,
    hash_secret,
    intersect_scopes,
    secret_matches,
)
from athkit.server._audit import AuditLog
from athkit.server._clock import Clock, SystemClock
from athkit.server._consent import SignedConsentContext
from athkit.server._crypto import TokenCipher
from athkit.server._oauth import HttpOAuthBridge, OAuthBridge, ProviderTokenSet, add_query
from athkit.server._policy import ApprovalPolicy
from athkit.server._ports import AgentVerifier, ConsentContextFactory, VerifiedAgentLike
from athkit.server._records import (
    AgentRecord,
    AgentState,
    AuditEvent,
    ProviderApproval,
    ProviderCredentials,
    ProviderGrant,
    SessionRecord,
    TokenInfo,
    TokenRecord,
    UserGrant,
)
from athkit.server._settings import ProviderSettings, ServerSettings
from athkit.server._stores import AuditQuery, DuplicateAgentError, EngineStores

_log = logging.getLogger("athkit.server")
_T = TypeVar("_T")

ACCESS_TOKEN_PREFIX = "ath_at_"
CLIENT_SECRET_PREFIX = "ath_cs_"
ATH_CODE_PREFIX = "ath_code_"
_PURGE_INTERVAL = 60.0  # forget expired sessions at most this often (piggybacked on authorize)
_SESSION_GRACE = 3600.0  # keep expired sessions an hour, so late calls still say SESSION_EXPIRED
_REFRESH_MARGIN = 30.0  # refresh provider tokens this many seconds before they expire
# Compared against when a client_id is unknown, so a miss costs what a hit costs.
_DUMMY_SECRET_HASH = hash_secret("athkit: no such client")


@dataclass(frozen=True, slots=True)
class ConsentStart:
    """What the consent link does: send the browser to ``redirect_url``; when
    ``binding_secret`` is set, first give the browser a cookie holding it (ATH §4.3)."""

    session_id: str
    redirect_url: str
    binding_secret: str | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """Where the browser goes after the provider's callback (ATH §4.4).

    ``redirect_url`` is the agent's ``user_redirect_uri`` with ``code``/``state`` (or
    ``error``/``state``); without one, a completion page shows ``code`` to the user.
    """

    session_id: str
    agent_state: str
    redirect_url: str | None
    code: str | None
    denied: bool
    agent_name: str | None = None
    provider_id: str | None = None


@dataclass(slots=True)
class _Ctx:
    """Who and what a call is about, for its audit event."""

    fail_event: str
    agent_id: str | None = None
    client_id: str | None = None
    user_id: str | None = None
    provider_id: str | None = None
    requested: list[str] = field(default_factory=list)


def _error(code: ErrorCode, message: str, **details: object) -> ATHError:
    return ATHError(code, message, details=dict(details))


def _iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _matches(presented: str, stored_hash: str | None) -> bool:
    # Constant-time compare of a presented secret against a stored SHA-256 hash.
    return secret_matches(presented, stored_hash or _DUMMY_SECRET_HASH) and stored_hash is not None


def redirect_uri_allowed(requested: str, registered: Sequence[str]) -> bool:
    """ATH §4.1: exact match against a registered URI; loopback URIs on any port (RFC 8252 §7.3)."""
    if "#" in requested:
        return False
    if requested in registered:
        return True
    want = urlsplit(requested)
    if want.scheme != "http" or want.hostname not in ("127.0.0.1", "::1", "localhost"):
        return False
    if want.hostname == "localhost":
        return False
    for candidate in registered:
        have = urlsplit(candidate)
        if (
            have.scheme == "http"
            and have.hostname == want.hostname
            and have.path == want.path
            and have.query == want.query
        ):
            return True
    return False


class ATHEngine:
    """The ATH implementer: registration, authorization, callback, token, revocation,
    validation and the operator's administration of agents and tokens."""

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
        self._cipher = TokenCipher(settings.secret_key.get_secret_value())
        # One refresh per grant at a time; a lock is forgotten once nobody holds it.
        self._refresh_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._next_purge = 0.0

    # --- plumbing -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The public base URL (no trailing slash): the audience of register/authorize/status."""
        return self.settings.base_url

    def consent_url(self, session_id: str) -> str:
        """``{base}/ath/consent/{session_id}``: the link handed to the user's browser."""
        return f"{self.base_url}/ath/consent/{session_id}"

    def _provider(self, provider_id: str) -> ProviderSettings | None:
        return self.policy.provider(provider_id)

    async def audit(self, event: str, **fields: object) -> None:
        """Record an audit event (also for the gateway's ``proxy_request``/``scope_violation``).

        Accepts the fields of :class:`AuditEvent` except ``timestamp``.
        """
        record = AuditEvent(event=event, timestamp=self.clock.now())
        for name, value in fields.items():
            setattr(record, name, value)
        await self.audit_log.record(record)

    async def _run(self, ctx: _Ctx, work: Awaitable[_T]) -> _T:
        try:
            return await work
        except ATHError as exc:
            await self._audit_rejection(ctx, exc)
            raise
        except Exception:
            _log.exception("ATH engine failure (failing closed)")
            error = _error(
                ErrorCode.INTERNAL_ERROR,
                "the server could not complete the request; nothing was issued",
            )
            # Best effort: the store that failed may be the audit store itself.
            with contextlib.suppress(Exception):
                await self._audit_rejection(ctx, error)
            raise error from None

    async def _audit_rejection(self, ctx: _Ctx, exc: ATHError) -> None:
        event = ctx.fail_event
        if exc.code in (ErrorCode.INVALID_ATTESTATION, ErrorCode.AGENT_IDENTITY_MISMATCH):
            event = "attestation_failed"
        reason = exc.details.get("reason") if isinstance(exc.details.get("reason"), str) else None
        try:
            await self.audit(
                event,
                agent_id=ctx.agent_id,
                client_id=ctx.client_id,
                user_id=ctx.user_id,
                provider_id=ctx.provider_id,
                requested_scopes=list(ctx.requested),
                denied_scopes=list(exc.details.get("denied_scopes", []) or []),
                reason=str(reason or exc.message),
                code=exc.code.value,
            )
        except Exception:
            _log.exception("audit store failed while recording a rejection")
            if exc.code is ErrorCode.INTERNAL_ERROR:
                raise
            raise _error(
                ErrorCode.INTERNAL_ERROR, "the audit store is unavailable; request refused"
            ) from None

    async def _verify(
        self, token: str, audience: str, expected_agent_id: str | None
    ) -> VerifiedAgentLike:
        return await self.verifier.verify(
            token, audience=audience, expected_agent_id=expected_agent_id
        )

    def _require_approved(self, agent: AgentRecord) -> None:
        # ATH §4.3: the agent is registered and its agent_status is "approved".
        if agent.status != "approved":
            raise _error(
                ErrorCode.AGENT_UNAPPROVED,
                f"agent registration is {agent.status}; an operator must approve it first",
                reason=f"agent_{agent.status}",
                agent_status=agent.status,
            )
        if agent.approval_expires <= self.clock.now():
            raise _error(
                ErrorCode.AGENT_UNAPPROVED,
                "the agent's approval has expired; register again or ask the operator",
                reason="approval_expired",
            )

    async def _authenticate_client(self, client_id: str, client_secret: str) -> AgentRecord:
        agent = await self.stores.agents.get(client_id)
        # Constant time whether or not the client exists.
        ok = _matches(client_secret, agent.client_secret_hash if agent else None)
        if agent is None or not ok:
            raise _error(
                ErrorCode.INVALID_CLIENT,
                "client authentication failed",
                reason="bad_client_credentials",
            )
        return agent

    # --- §4.1 registration ----------------------------------------------------------------

    async def register(self, request: RegisterRequest) -> RegisterResponse:
        """ATH §4.1: verify the attestation, apply the approval policy, store the registration
        and return its client credentials (the secret only this once)."""
        ctx = _Ctx(
            "agent_registration_denied",
            agent_id=request.agent_id,
            requested=[s for p in request.requested_providers for s in p.scopes],
        )
        return await self._run(ctx, self._register(request, ctx))

    async def _register(self, request: RegisterRequest, ctx: _Ctx) -> RegisterResponse:
        # ATH §4.1: verify the attestation; its sub must equal agent_id (aud = base URL, §2).
        verified = await self._verify(request.agent_attestation, self.base_url, request.agent_id)
        # ATH §4.1: a second registration of the same agent_id answers 409.
        if await self.stores.agents.get_by_agent_id(request.agent_id) is not None:
            raise _error(
                ErrorCode.AGENT_ALREADY_REGISTERED,
                "this agent_id is already registered; use its existing client_id",
                reason="duplicate_agent_id",
            )
        if request.redirect_uris:
            for uri in request.redirect_uris:
                parts = urlsplit(uri)
                if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
                    raise _error(
                        ErrorCode.INVALID_REQUEST,
                        f"redirect_uris: {uri!r} is not an absolute http(s) URL without fragment",
                        field="redirect_uris",
                    )
        # ATH §4.1: the policy may approve a subset; the rest is denied with a reason.
        decisions = self.policy.decide(request.agent_id, request.requested_providers)
        status = self.policy.status(decisions)
        now = self.clock.now()
        secret = generate_secret(CLIENT_SECRET_PREFIX)
        agent = AgentRecord(
            client_id=generate_secret("ath_ci_", 18),
            agent_id=request.agent_id,
            agent_name=verified.identity.name,
            developer_name=request.developer.name,
            developer_id=request.developer.id,
            developer_contact=request.developer.contact,
            client_secret_hash=hash_secret(secret),  # stored only as a hash
            status=status,
            providers=decisions,
            created_at=now,
            updated_at=now,
            approval_expires=now + self.policy.approval_lifetime(decisions),
            redirect_uris=list(request.redirect_uris) if request.redirect_uris else None,
            purpose=request.purpose,
        )
        try:
            await self.stores.agents.insert(agent)
        except DuplicateAgentError:
            raise _error(
                ErrorCode.AGENT_ALREADY_REGISTERED,
                "this agent_id is already registered; use its existing client_id",
                reason="duplicate_agent_id",
            ) from None
        ctx.client_id = agent.client_id
        await self.audit(
            "agent_registered" if status != "denied" else "agent_registration_denied",
            agent_id=agent.agent_id,
            client_id=agent.client_id,
            requested_scopes=ctx.requested,
            effective_scopes=[s for d in decisions for s in d.approved_scopes],
            denied_scopes=[s for d in decisions for s in d.denied_scopes],
            reason="; ".join(
                f"{d.provider_id}: {d.denial_reason}" for d in decisions if d.denial_reason
            )
            or None,
            details={"agent_status": status},
        )
        return RegisterResponse(
            client_id=agent.client_id,
            client_secret=secret,
            agent_status=status if status != "suspended" else "denied",
            approved_providers=_approved_providers(agent),
            approval_expires=_iso(agent.approval_expires),
        )

    # --- §4.2 status ----------------------------------------------------------------------

    async def agent_status(
        self,
        client_id: str,
        *,
        client_secret: str | None = None,
        attestation: str | None = None,
    ) -> AgentStatusResponse:
        """ATH §4.2: the registration's status, for the agent itself only.

        Authenticated by the client secret or by an attestation (``aud`` = base URL). Another
        agent's client_id answers exactly like an unknown one (no enumeration).
        """
        ctx = _Ctx("access_denied", client_id=client_id)
        return await self._run(ctx, self._agent_status(client_id, client_secret, attestation, ctx))

    async def _agent_status(
        self, client_id: str, client_secret: str | None, attestation: str | None, ctx: _Ctx
    ) -> AgentStatusResponse:
        # ATH §4.2: must be authenticated; an agent may read only its own registration.
        if client_secret is not None:
            agent = await self._authenticate_client(client_id, client_secret)
        elif attestation is not None:
            verified = await self._verify(attestation, self.base_url, None)
            ctx.agent_id = verified.attestation.sub
            found = await self.stores.agents.get(client_id)
            if found is None or found.agent_id != verified.attestation.sub:
                raise _error(
                    ErrorCode.AGENT_NOT_REGISTERED,
                    "no registration with this client_id for this agent",
                    reason="not_own_registration",
                )
            agent = found
        else:
            raise _error(
                ErrorCode.INVALID_CLIENT,
                "authenticate with HTTP Basic client credentials or an X-ATH-Attestation header",
                reason="unauthenticated",
            )
        ctx.agent_id = agent.agent_id
        return AgentStatusResponse(
            client_id=agent.client_id,
            agent_id=agent.agent_id,
            agent_status=agent.status if agent.status != "suspended" else "denied",
            approved_providers=_approved_providers(agent),
            approval_expires=_iso(agent.approval_expires),
        )

    # --- §4.3 authorize -------------------------------------------------------------------

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResponse:
        """ATH §4.3: check the agent and its approval, open a ≤10-minute single-use session and
        return the consent link for the user's browser."""
        ctx = _Ctx(
            "access_denied",
            client_id=request.client_id,
            provider_id=request.provider_id,
            requested=list(request.scopes),
        )
        return await self._run(ctx, self._authorize(request, ctx))

    async def _authorize(self, request: AuthorizeRequest, ctx: _Ctx) -> AuthorizeResponse:
        agent = await self.stores.agents.get(request.client_id)
        if agent is None:
            raise _error(
                ErrorCode.AGENT_NOT_REGISTERED,
                "unknown client_id; register the agent first",
                reason="unknown_client",
            )
        ctx.agent_id = agent.agent_id
        # ATH §4.3: attestation valid (aud = base URL) and its sub equals the registered agent_id.
        await self._verify(request.agent_attestation, self.base_url, agent.agent_id)
        self._require_approved(agent)
        # ATH §4.3: the agent is approved for this provider.
        approval = agent.provider(request.provider_id)
        provider = self._provider(request.provider_id)
        if provider is None or approval is None or not approval.approved_scopes:
            raise _error(
                ErrorCode.PROVIDER_NOT_APPROVED,
                f"the agent is not approved for provider {request.provider_id!r}",
                reason="provider_not_approved",
            )
        # ATH §4.3: every requested scope lies within the approved scopes.
        outside = [s for s in request.scopes if s not in approval.approved_scopes]
        if outside:
            raise _error(
                ErrorCode.SCOPE_NOT_APPROVED,
                f"scopes not approved for this agent: {', '.join(outside)}",
                reason="scope_not_approved",
                denied_scopes=outside,
                approved_scopes=list(approval.approved_scopes),
            )
        # ATH §4.1: redirect URIs match a registered one (loopback on any port, RFC 8252 §7.3);
        # without registered URIs, a request carrying one is rejected.
        if request.user_redirect_uri is not None and not redirect_uri_allowed(
            request.user_redirect_uri, agent.redirect_uris or []
        ):
            raise _error(
                ErrorCode.INVALID_REQUEST,
                "user_redirect_uri is not one of the agent's registered redirect_uris",
                field="user_redirect_uri",
                reason="redirect_uri_not_registered",
            )
        now = self.clock.now()
        session = SessionRecord(
            session_id=generate_secret("ath_sess_", 24),
            client_id=agent.client_id,
            agent_id=agent.agent_id,
            provider_id=request.provider_id,
            requested_scopes=list(dict.fromkeys(request.scopes)),
            agent_state=request.state,
            # ATH §4.3: the PKCE verifier stays on the server.
            code_verifier=generate_code_verifier(),
            created_at=now,
            # ATH §4.3: the session expires within 10 minutes.
            expires_at=now + self.settings.session_lifetime,
            user_redirect_uri=request.user_redirect_uri,
            resource=request.resource or provider.resource,
        )
        await self.stores.sessions.insert(session)
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_INTERVAL
            await self.purge_expired()
        await self.audit(
            "authorization_started",
            agent_id=agent.agent_id,
            client_id=agent.client_id,
            provider_id=request.provider_id,
            requested_scopes=list(request.scopes),
            details={"ath_session_id": session.session_id},
        )
        return AuthorizeResponse(
            authorization_url=self.consent_url(session.session_id),
            ath_session_id=session.session_id,
        )

    async def purge_expired(self) -> int:
        """Forget sessions that expired more than an hour ago; return how many."""
        return await self.stores.sessions.delete_expired(self.clock.now() - _SESSION_GRACE)

    # --- §4.3 browser binding -------------------------------------------------------------

    async def begin_consent(self, session_id: str, presented_binding: str | None) -> ConsentStart:
        """The user's browser opened the consent link: bind it to the session and send it to
        the provider (ATH §4.3).

        The first visit returns a fresh ``binding_secret`` for the adapter to set as an HttpOnly
        cookie. A later visit must present that secret; another browser is refused with
        ``STATE_MISMATCH``.
        """
        ctx = _Ctx("access_denied")
        return await self._run(ctx, self._begin_consent(session_id, presented_binding, ctx))

    async def _begin_consent(
        self, session_id: str, presented_binding: str | None, ctx: _Ctx
    ) -> ConsentStart:
        session = await self.stores.sessions.get(session_id)
        if session is None:
            raise _error(
                ErrorCode.SESSION_NOT_FOUND, "unknown ATH session", reason="unknown_session"
            )
        ctx.agent_id, ctx.client_id = session.agent_id, session.client_id
        ctx.provider_id, ctx.requested = session.provider_id, list(session.requested_scopes)
        if session.expires_at <= self.clock.now():
            raise _error(
                ErrorCode.SESSION_EXPIRED,
                "this authorization link has expired; ask the agent to start again",
                reason="session_expired",
            )
        agent = await self.stores.agents.get(session.client_id)
        provider = self._provider(session.provider_id)
        if agent is None or provider is None:
            raise _error(
                ErrorCode.SESSION_NOT_FOUND,
                "the session's agent or provider is gone",
                reason="session_orphaned",
            )
        self._require_approved(agent)
        oauth_state = secrets.token_urlsafe(32)
        new_binding: str | None = None
        if session.status == "created":
            new_binding = secrets.token_urlsafe(32)
            # ATH §4.3: bind this browser to the session (cookie secret, stored as a hash).
            won = await self.stores.sessions.transition(
                session.session_id,
                "created",
                "bound",
                binding_hash=hash_secret(new_binding),
                oauth_state_hash=hash_secret(oauth_state),
            )
            if not won:
                raise _error(
                    ErrorCode.STATE_MISMATCH,
                    "this authorization link was already opened in another browser",
                    reason="browser_binding",
                )
        elif session.status == "bound":
            # Same browser coming back (e.g. reload): it must hold the binding secret.
            if presented_binding is None or not _matches(presented_binding, session.binding_hash):
                raise _error(
                    ErrorCode.STATE_MISMATCH,
                    "this authorization link was already opened in another browser",
                    reason="browser_binding",
                )
            won = await self.stores.sessions.transition(
                session.session_id, "bound", "bound", oauth_state_hash=hash_secret(oauth_state)
            )
            if not won:
                raise _error(
                    ErrorCode.SESSION_NOT_FOUND,
                    "this authorization link was already used",
                    reason="session_used",
                )
        else:
            raise _error(
                ErrorCode.SESSION_NOT_FOUND,
                "this authorization link was already used",
                reason="session_used",
            )
        challenge = code_challenge_s256(session.code_verifier)
        context = (
            self.consent_context(provider, agent, session, challenge)
            if self.consent_context is not None
            else None
        )
        url = self.oauth.authorization_url(
            provider,
            state=oauth_state,
            code_challenge=challenge,
            redirect_uri=self.settings.callback_url,
            scopes=session.requested_scopes,
            resource=session.resource,
            ath_context=context,
        )
        return ConsentStart(session.session_id, url, new_binding, session.expires_at)

    # --- §4.4 callback --------------------------------------------------------------------

    async def callback(
        self,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        binding_for: Callable[[str], str | None],
    ) -> CallbackResult:
        """ATH §4.4: the provider sent the browser back.

        Checks ``state`` and the browser binding (``binding_for(session_id)`` returns the secret
        the browser presents for that session), exchanges the code server-side with the PKCE
        verifier, learns the user, stores the provider tokens encrypted, records the consented
        scopes and issues the one-time ATH authorization code.
        """
        ctx = _Ctx("access_denied")
        return await self._run(ctx, self._callback(state, code, error, binding_for, ctx))

    async def _callback(
        self,
        state: str | None,
        code: str | None,
        error: str | None,
        binding_for: Callable[[str], str | None],
        ctx: _Ctx,
    ) -> CallbackResult:
        if (
            (state and len(state) > 512)
            or (code and len(code) > 2048)
            or (error and len(error) > 256)
        ):
            raise _error(
                ErrorCode.INVALID_REQUEST,
                "callback parameter too long",
                reason="parameter_too_long",
            )
        # ATH §4.4: check state.
        if not state:
            raise _error(
                ErrorCode.STATE_MISMATCH, "the callback carries no state", reason="missing_state"
            )
        session = await self.stores.sessions.get_by_state_hash(hash_secret(state))
        if session is None:
            raise _error(
                ErrorCode.STATE_MISMATCH,
                "the callback's state matches no session",
                reason="wrong_state",
            )
        ctx.agent_id, ctx.client_id = session.agent_id, session.client_id
        ctx.provider_id, ctx.requested = session.provider_id, list(session.requested_scopes)
        if session.expires_at <= self.clock.now():
            raise _error(
                ErrorCode.SESSION_EXPIRED,
                "the authorization session has expired",
                reason="session_expired",
            )
        if session.status != "bound":
            raise _error(
                ErrorCode.SESSION_NOT_FOUND,
                "this authorization was already completed",
                reason="session_used",
            )
        # ATH §4.3: the same browser that opened the consent link came back.
        presented = binding_for(session.session_id)
        if presented is None or not _matches(presented, session.binding_hash):
            raise _error(
                ErrorCode.STATE_MISMATCH,
                "this browser did not start this authorization",
                reason="browser_binding",
            )
        agent = await self.stores.agents.get(session.client_id)
        provider = self._provider(session.provider_id)
        if agent is None or provider is None:
            raise _error(
                ErrorCode.SESSION_NOT_FOUND,
                "the session's agent or provider is gone",
                reason="session_orphaned",
            )
        if error is not None:
            denied = error == "access_denied"
            await self.stores.sessions.transition(
                session.session_id,
                "bound",
                "denied" if denied else "failed",
                failure_reason=error[:128],
            )
            await self.audit(
                "access_denied",
                agent_id=session.agent_id,
                client_id=session.client_id,
                provider_id=session.provider_id,
                requested_scopes=list(session.requested_scopes),
                reason="user_denied" if denied else f"provider_error: {error[:128]}",
                code=(ErrorCode.USER_DENIED if denied else ErrorCode.OAUTH_ERROR).value,
            )
            redirect = None
            if session.user_redirect_uri:
                redirect = add_query(
                    session.user_redirect_uri,
                    {
                        "error": "access_denied" if denied else "server_error",
                        "state": session.agent_state,
                    },
                )
            return CallbackResult(
                session.session_id,
                session.agent_state,
                redirect,
                None,
                True,
                agent.agent_name,
                session.provider_id,
            )
        if not code:
            raise _error(
                ErrorCode.INVALID_REQUEST,
                "the callback carries no code",
                field="code",
                reason="missing_code",
            )
        # ATH §4.4: exchange server-side, form-encoded, with the PKCE verifier (and resource).
        try:
            tokens = await self.oauth.exchange_code(
                provider,
                code=code,
                code_verifier=session.code_verifier,
                redirect_uri=self.settings.callback_url,
                resource=session.resource,
            )
            user_id = await self.oauth.user_id(provider, tokens)
        except ATHError as exc:
            await self.stores.sessions.transition(
                session.session_id, "bound", "failed", failure_reason=exc.message[:128]
            )
            raise
        ctx.user_id = user_id
        # ATH §4.4: record what the user actually consented to.
        consented = (
            list(tokens.scope) if tokens.scope is not None else list(session.requested_scopes)
        )
        grant = await self._store_grant(agent, provider, user_id, consented, tokens)
        ath_code = generate_secret(ATH_CODE_PREFIX)
        won = await self.stores.sessions.transition(
            session.session_id,
            "bound",
            "consented",
            ath_code_hash=hash_secret(ath_code),
            user_id=user_id,
            consented_scopes=consented,
            grant_id=grant.grant_id,
        )
        if not won:
            raise _error(
                ErrorCode.SESSION_NOT_FOUND,
                "this authorization was already completed",
                reason="session_used",
            )
        redirect = None
        if session.user_redirect_uri:
            # Our decision (ATH §4.4): redirect with our one-time code and the agent's state.
            redirect = add_query(
                session.user_redirect_uri, {"code": ath_code, "state": session.agent_state}
            )
        return CallbackResult(
            session.session_id,
            session.agent_state,
            redirect,
            ath_code,
            False,
            agent.agent_name,
            session.provider_id,
        )

    async def _store_grant(
        self,
        agent: AgentRecord,
        provider: ProviderSettings,
        user_id: str,
        consented: list[str],
        tokens: ProviderTokenSet,
    ) -> ProviderGrant:
        now = self.clock.now()
        grant_id = generate_secret("grant_", 12)
        existing = [
            g
            for g in await self.stores.grants.list_for_user(user_id)
            if g.client_id == agent.client_id and g.provider_id == provider.provider_id
        ]
        if existing:
            grant_id = existing[0].grant_id
        # ATH §6: provider tokens stay on the server, encrypted at rest, bound to their grant.
        stored = await self.stores.grants.upsert(
            self._sealed_grant(grant_id, agent, provider, user_id, consented, tokens, now)
        )
        if stored.grant_id != grant_id:
            # A concurrent consent created the grant first: seal our tokens to its id instead.
            stored = self._sealed_grant(
                stored.grant_id, agent, provider, user_id, consented, tokens, now
            )
            stored = await self.stores.grants.upsert(stored)
        return stored

    def _sealed_grant(
        self,
        grant_id: str,
        agent: AgentRecord,
        provider: ProviderSettings,
        user_id: str,
        consented: list[str],
        tokens: ProviderTokenSet,
        now: float,
    ) -> ProviderGrant:
        return ProviderGrant(
            grant_id=grant_id,
            client_id=agent.client_id,
            agent_id=agent.agent_id,
            user_id=user_id,
            provider_id=provider.provider_id,
            consented_scopes=consented,
            access_token_enc=self._cipher.encrypt(tokens.access_token, bound_to=grant_id),
            refresh_token_enc=(
                self._cipher.encrypt(tokens.refresh_token, bound_to=grant_id)
                if tokens.refresh_token
                else None
            ),
            token_type=tokens.token_type,
            expires_at=now + tokens.expires_in if tokens.expires_in else None,
            created_at=now,
            updated_at=now,
        )

    # --- §4.5 token -----------------------------------------------------------------------

    async def exchange_token(self, request: TokenRequest) -> TokenResponse:
        """ATH §4.5: authenticate the client, verify a fresh attestation (``aud`` = token
        endpoint), consume the session, intersect scopes and issue a bound token."""
        ctx = _Ctx("access_denied", client_id=request.client_id)
        return await self._run(ctx, self._exchange_token(request, ctx))

    async def _exchange_token(self, request: TokenRequest, ctx: _Ctx) -> TokenResponse:
        agent = await self._authenticate_client(request.client_id, request.client_secret)
        ctx.agent_id = agent.agent_id
        # ATH §4.5: fresh attestation, aud = token endpoint URL, sub = registered agent_id.
        await self._verify(request.agent_attestation, self.settings.token_endpoint, agent.agent_id)
        self._require_approved(agent)
        session = await self.stores.sessions.get(request.ath_session_id)
        # ATH §4.5: the session belongs to this client.
        if session is None or session.client_id != agent.client_id:
            raise _error(
                ErrorCode.SESSION_NOT_FOUND,
                "unknown ATH session for this client",
                reason="unknown_session",
            )
        ctx.provider_id, ctx.user_id = session.provider_id, session.user_id
        ctx.requested = list(session.requested_scopes)
        # ATH §4.5: not expired (≤ 10 minutes).
        if session.expires_at <= self.clock.now():
            raise _error(
                ErrorCode.SESSION_EXPIRED,
                "the ATH session has expired; authorize again",
                reason="session_expired",
            )
        if session.status == "denied":
            await self.stores.sessions.transition(session.session_id, "denied", "consumed")
            raise _error(ErrorCode.USER_DENIED, "the user refused consent", reason="user_denied")
        if session.status == "failed":
            await self.stores.sessions.transition(session.session_id, "failed", "consumed")
            raise _error(
                ErrorCode.OAUTH_ERROR,
                "the provider's authorization failed",
                reason=session.failure_reason or "provider_error",
            )
        if session.status == "consumed":
            # ATH §4.5: the session is single-use.
            raise _error(
                ErrorCode.SESSION_NOT_FOUND,
                "this ATH session was already used",
                reason="session_used",
            )
        if session.status != "consented":
            raise _error(
                ErrorCode.SESSION_NOT_FOUND,
                "the user has not completed consent yet",
                reason="consent_incomplete",
            )
        # Our decision (ATH §4.4): the one-time ATH code must match (constant time).
        if not _matches(request.code, session.ath_code_hash):
            raise _error(
                ErrorCode.SESSION_NOT_FOUND,
                "wrong authorization code for this session",
                reason="wrong_code",
            )
        # ATH §4.5: consumed on success — exactly one exchange can win.
        if not await self.stores.sessions.transition(session.session_id, "consented", "consumed"):
            raise _error(
                ErrorCode.SESSION_NOT_FOUND,
                "this ATH session was already used",
                reason="session_used",
            )
        approval = agent.provider(session.provider_id)
        approved = list(approval.approved_scopes) if approval else []
        consented = list(session.consented_scopes or [])
        # ATH §5: effective = agent_approved ∩ user_consented ∩ requested.
        breakdown = intersect_scopes(approved, consented, session.requested_scopes)
        if not breakdown.effective:
            # ATH §5: never issue on an empty set.
            raise _error(
                ErrorCode.SCOPE_NOT_APPROVED,
                "no scope is both approved for the agent and consented by the user; "
                "no token issued",
                reason="empty_intersection",
                scope_intersection=breakdown.dump(),
                denied_scopes=list(session.requested_scopes),
            )
        assert session.user_id is not None
        now = self.clock.now()
        token = generate_secret(ACCESS_TOKEN_PREFIX)
        # ATH §4.5: bound to (agent_id, user_id, provider_id, scopes), lifetime ≤ 1 hour.
        lifetime = self.settings.token_lifetime
        record = TokenRecord(
            token_id=generate_secret("tok_", 12),
            token_hash=hash_secret(token),  # stored only as a hash
            client_id=agent.client_id,
            agent_id=agent.agent_id,
            user_id=session.user_id,
            provider_id=session.provider_id,
            scopes=list(breakdown.effective),
            created_at=now,
            expires_at=now + lifetime,
            grant_id=session.grant_id,
            session_id=session.session_id,
        )
        await self.stores.tokens.insert(record)
        await self.audit(
            "access_granted",
            agent_id=agent.agent_id,
            client_id=agent.client_id,
            user_id=session.user_id,
            provider_id=session.provider_id,
            requested_scopes=list(session.requested_scopes),
            effective_scopes=list(breakdown.effective),
            denied_scopes=[s for s in session.requested_scopes if s not in breakdown.effective],
            details={"token_id": record.token_id},
        )
        return TokenResponse(
            access_token=token,
            expires_in=lifetime,
            effective_scopes=list(breakdown.effective),
            provider_id=session.provider_id,
            agent_id=agent.agent_id,
            scope_intersection=breakdown,  # ATH §5: always return the breakdown
        )

    # --- §4.7 revocation ------------------------------------------------------------------

    async def revoke(self, request: RevokeRequest) -> None:
        """ATH §4.7, agent side: ``client_id``/``client_secret`` required; an agent revokes only
        its own tokens. Succeeds silently for unknown or foreign tokens (RFC 7009 §2.2: no
        leak), but a foreign token survives and the attempt is audited."""
        ctx = _Ctx("access_denied", client_id=request.client_id)
        await self._run(ctx, self._revoke(request, ctx))

    async def _revoke(self, request: RevokeRequest, ctx: _Ctx) -> None:
        # ATH §4.7: unauthenticated revocation is rejected.
        if not request.client_id or not request.client_secret:
            raise _error(
                ErrorCode.INVALID_CLIENT,
                "revocation needs client_id and client_secret",
                reason="unauthenticated",
            )
        agent = await self._authenticate_client(request.client_id, request.client_secret)
        ctx.agent_id = agent.agent_id
        token = await self.stores.tokens.get_by_hash(hash_secret(request.token))
        if token is None:
            return
        if token.client_id != agent.client_id:
            # ATH §4.7: agents may revoke only their own tokens.
            await self.audit(
                "access_denied",
                agent_id=agent.agent_id,
                client_id=agent.client_id,
                provider_id=token.provider_id,
                reason="revoke_not_owner",
                code=ErrorCode.INVALID_CLIENT.value,
                details={"token_id": token.token_id},
            )
            return
        await self._revoke_one(token, "agent")

    async def _revoke_one(self, token: TokenRecord, by: str) -> bool:
        changed = await self.stores.tokens.revoke(token.token_id, self.clock.now(), by)
        if changed:
            await self.audit(
                "token_revoked",
                agent_id=token.agent_id,
                client_id=token.client_id,
                user_id=token.user_id,
                provider_id=token.provider_id,
                effective_scopes=list(token.scopes),
                reason=f"revoked by {by}",
                details={"token_id": token.token_id},
            )
        return changed

    async def revoke_for_user(
        self, user_id: str, *, client_id: str | None = None, token_id: str | None = None
    ) -> int:
        """ATH §4.7, user side (the service authenticated ``user_id``): revoke one of the
        user's tokens, or disconnect an agent (all its tokens for this user, and the stored
        provider grant). Returns how many tokens died."""
        ctx = _Ctx("access_denied", user_id=user_id, client_id=client_id)
        return await self._run(ctx, self._revoke_for_user(user_id, client_id, token_id))

    async def _revoke_for_user(
        self, user_id: str, client_id: str | None, token_id: str | None
    ) -> int:
        if token_id is not None:
            token = await self.stores.tokens.get(token_id)
            if token is None or token.user_id != user_id:
                return 0
            return 1 if await self._revoke_one(token, "user") else 0
        if client_id is None:
            raise _error(
                ErrorCode.INVALID_REQUEST, "name a token_id or a client_id", field="client_id"
            )
        live = await self.stores.tokens.list(
            client_id=client_id, user_id=user_id, active_at=self.clock.now(), limit=10_000
        )
        count = await self.stores.tokens.revoke_matching(
            self.clock.now(), "user", client_id=client_id, user_id=user_id
        )
        for grant in await self.stores.grants.list_for_user(user_id):
            if grant.client_id == client_id:
                await self.stores.grants.delete(grant.grant_id)
        agent_id = live[0].agent_id if live else None
        await self.audit(
            "token_revoked",
            agent_id=agent_id,
            client_id=client_id,
            user_id=user_id,
            reason="agent disconnected by the user",
            details={"tokens": count},
        )
        return count

    # --- validation (native API calls and the gateway proxy) ------------------------------

    async def validate_token(
        self, token: str, *, agent_id: str | None = None, provider_id: str | None = None
    ) -> TokenInfo:
        """Check an ATH access token: it exists, is not revoked, not expired, and — when given —
        belongs to ``agent_id`` (``X-ATH-Agent-ID``) and ``provider_id`` (ATH §4.6 steps 1–3).

        Raises ``TOKEN_INVALID``, ``TOKEN_REVOKED``, ``TOKEN_EXPIRED``,
        ``AGENT_IDENTITY_MISMATCH`` or ``PROVIDER_MISMATCH``. Never cached: a revocation takes
        effect on the next call.
        """
        ctx = _Ctx("access_denied", agent_id=agent_id, provider_id=provider_id)
        return await self._run(ctx, self._validate_token(token, agent_id, provider_id, ctx))

    async def _validate_token(
        self, token: str, agent_id: str | None, provider_id: str | None, ctx: _Ctx
    ) -> TokenInfo:
        if not token.startswith(ACCESS_TOKEN_PREFIX) or len(token) > 512:
            raise _error(
                ErrorCode.TOKEN_INVALID, "not an ATH access token", reason="malformed_token"
            )
        # ATH §4.7: a revoked token is unusable at once, so validity is read from the store on
        # every call and never cached.
        record = await self.stores.tokens.get_by_hash(hash_secret(token))
        if record is None:
            raise _error(ErrorCode.TOKEN_INVALID, "unknown access token", reason="unknown_token")
        ctx.client_id, ctx.user_id = record.client_id, record.user_id
        ctx.requested = list(record.scopes)
        if agent_id is None:
            ctx.agent_id = record.agent_id
        if provider_id is None:
            ctx.provider_id = record.provider_id
        if record.revoked_at is not None:
            raise _error(
                ErrorCode.TOKEN_REVOKED,
                "the access token was revoked",
                reason="token_revoked",
                revoked_by=record.revoked_by,
            )
        if record.expires_at <= self.clock.now():
            raise _error(
                ErrorCode.TOKEN_EXPIRED,
                "the access token has expired; authorize again",
                reason="token_expired",
            )
        # ATH §4.6 step 2 / §6: a token from one agent is useless for another.
        if agent_id is not None and not hmac.compare_digest(
            agent_id.encode("utf-8", "surrogateescape"), record.agent_id.encode("utf-8")
        ):
            raise _error(
                ErrorCode.AGENT_IDENTITY_MISMATCH,
                "the token belongs to another agent",
                reason="agent_mismatch",
            )
        # ATH §4.6 step 3.
        if provider_id is not None and provider_id != record.provider_id:
            raise _error(
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

    async def provider_credentials(
        self, info: TokenInfo, *, force_refresh: bool = False
    ) -> ProviderCredentials:
        """The decrypted provider access token behind a validated ATH token.

        Refreshed with the provider's refresh token when expired (or when ``force_refresh``,
        e.g. after the provider answered 401), and the refresh persisted. ``OAUTH_ERROR`` with
        ``details.reason == "user_reauthorization_required"`` when the user must consent again.
        """
        ctx = _Ctx(
            "access_denied",
            agent_id=info.agent_id,
            client_id=info.client_id,
            user_id=info.user_id,
            provider_id=info.provider_id,
        )
        return await self._run(ctx, self._provider_credentials(info, force_refresh))

    async def _provider_credentials(
        self, info: TokenInfo, force_refresh: bool
    ) -> ProviderCredentials:
        if info.grant_id is None:
            raise _error(
                ErrorCode.OAUTH_ERROR,
                "no provider grant behind this token",
                reason="user_reauthorization_required",
            )
        lock = self._refresh_locks.get(info.grant_id)
        if lock is None:
            lock = self._refresh_locks[info.grant_id] = asyncio.Lock()
        async with lock:
            grant = await self.stores.grants.get(info.grant_id)
            if grant is None or grant.needs_user:
                raise _error(
                    ErrorCode.OAUTH_ERROR,
                    "the user must authorize this agent again",
                    reason="user_reauthorization_required",
                )
            now = self.clock.now()
            stale = grant.expires_at is not None and grant.expires_at - _REFRESH_MARGIN <= now
            if stale or force_refresh:
                grant = await self._refresh_grant(grant)
            return ProviderCredentials(
                grant_id=grant.grant_id,
                provider_id=grant.provider_id,
                user_id=grant.user_id,
                access_token=self._cipher.decrypt(grant.access_token_enc, bound_to=grant.grant_id),
                token_type=grant.token_type,
                expires_at=grant.expires_at,
            )

    async def _refresh_grant(self, grant: ProviderGrant) -> ProviderGrant:
        provider = self._provider(grant.provider_id)
        if provider is None or grant.refresh_token_enc is None:
            await self._mark_needs_user(grant, "provider token expired and cannot be refreshed")
            raise _error(
                ErrorCode.OAUTH_ERROR,
                "the provider token expired; the user must authorize this agent again",
                reason="user_reauthorization_required",
            )
        refresh_token = self._cipher.decrypt(grant.refresh_token_enc, bound_to=grant.grant_id)
        try:
            tokens = await self.oauth.refresh(provider, refresh_token)
        except ATHError as exc:
            if exc.details.get("provider_error") in ("invalid_grant", "unauthorized_client"):
                await self._mark_needs_user(grant, "refresh token refused by the provider")
                raise _error(
                    ErrorCode.OAUTH_ERROR,
                    "the provider refused the refresh; the user must authorize this agent again",
                    reason="user_reauthorization_required",
                ) from None
            raise
        now = self.clock.now()
        updated = replace(
            grant,
            access_token_enc=self._cipher.encrypt(tokens.access_token, bound_to=grant.grant_id),
            refresh_token_enc=(
                self._cipher.encrypt(tokens.refresh_token, bound_to=grant.grant_id)
                if tokens.refresh_token
                else grant.refresh_token_enc
            ),
            token_type=tokens.token_type,
            expires_at=now + tokens.expires_in if tokens.expires_in else None,
            updated_at=now,
        )
        await self.stores.grants.update(updated)
        return updated

    async def _mark_needs_user(self, grant: ProviderGrant, reason: str) -> None:
        grant.needs_user, grant.needs_user_reason = True, reason
        grant.updated_at = self.clock.now()
        await self.stores.grants.update(grant)

    async def mark_grant_needs_user(self, grant_id: str, reason: str) -> None:
        """Flag a provider grant as unusable until the user consents again (e.g. the provider
        rejected the token even after a refresh)."""
        ctx = _Ctx("access_denied")

        async def work() -> None:
            grant = await self.stores.grants.get(grant_id)
            if grant is not None:
                await self._mark_needs_user(grant, reason)

        await self._run(ctx, work())

    async def list_user_grants(self, user_id: str) -> list[UserGrant]:
        """The user's "Connected agents": agent name, provider, scopes and since when."""
        ctx = _Ctx("access_denied", user_id=user_id)
        return await self._run(ctx, self._list_user_grants(user_id))

    async def _list_user_grants(self, user_id: str) -> list[UserGrant]:
        out: list[UserGrant] = []
        now = self.clock.now()
        for grant in await self.stores.grants.list_for_user(user_id):
            agent = await self.stores.agents.get(grant.client_id)
            live = await self.stores.tokens.list(
                client_id=grant.client_id,
                user_id=user_id,
                provider_id=grant.provider_id,
                active_at=now,
                limit=1000,
            )
            scopes: list[str] = []
            for token in live:
                scopes.extend(s for s in token.scopes if s not in scopes)
            out.append(
                UserGrant(
                    client_id=grant.client_id,
                    agent_id=grant.agent_id,
                    agent_name=agent.agent_name if agent else grant.agent_id,
                    provider_id=grant.provider_id,
                    scopes=tuple(scopes or grant.consented_scopes),
                    since=grant.created_at,
                    active_tokens=len(live),
                )
            )
        return out

    # --- administration -------------------------------------------------------------------

    async def list_agents(self, status: AgentState | None = None) -> list[AgentRecord]:
        """Every registration (optionally only one status)."""
        return await self._run(_Ctx("agent_updated"), self.stores.agents.list(status))

    async def get_agent(self, client_id: str) -> AgentRecord:
        """One registration; ``AGENT_NOT_REGISTERED`` if unknown."""

        async def work() -> AgentRecord:
            agent = await self.stores.agents.get(client_id)
            if agent is None:
                raise _error(
                    ErrorCode.AGENT_NOT_REGISTERED, "unknown client_id", reason="unknown_client"
                )
            return agent

        return await self._run(_Ctx("agent_updated", client_id=client_id), work())

    async def approve_agent(self, client_id: str) -> AgentRecord:
        """Approve a registration: scopes awaiting review become approved, the status
        ``approved``, and the approval lifetime restarts."""

        def change(agent: AgentRecord) -> None:
            for approval in agent.providers:
                approval.approved_scopes.extend(
                    s for s in approval.pending_scopes if s not in approval.approved_scopes
                )
                approval.pending_scopes = []
            agent.status = (
                "approved" if any(a.approved_scopes for a in agent.providers) else ("denied")
            )
            agent.status_reason = None
            agent.approval_expires = self.clock.now() + self.policy.approval_lifetime(
                agent.providers
            )

        return await self._change_agent(client_id, change, "approved by operator")

    async def deny_agent(self, client_id: str, reason: str = "denied by operator") -> AgentRecord:
        """Deny a registration (pending or not); every live token of the agent dies."""

        def change(agent: AgentRecord) -> None:
            for approval in agent.providers:
                approval.denied_scopes.extend(
                    s for s in approval.pending_scopes if s not in approval.denied_scopes
                )
                if approval.pending_scopes:
                    approval.denial_reason = reason
                approval.pending_scopes = []
            agent.status = "denied"
            agent.status_reason = reason

        return await self._change_agent(client_id, change, reason, revoke_by="operator")

    async def suspend_agent(
        self, client_id: str, reason: str = "suspended by operator"
    ) -> AgentRecord:
        """ATH §6: suspend a compromised agent; all its tokens die at once and it cannot
        authorize or exchange again until reinstated."""

        def change(agent: AgentRecord) -> None:
            agent.status = "suspended"
            agent.status_reason = reason

        return await self._change_agent(client_id, change, reason, revoke_by="suspension")

    async def reinstate_agent(self, client_id: str) -> AgentRecord:
        """Lift a suspension or denial: the agent is approved again for its approved scopes."""

        def change(agent: AgentRecord) -> None:
            agent.status = (
                "approved" if any(a.approved_scopes for a in agent.providers) else ("denied")
            )
            agent.status_reason = None

        return await self._change_agent(client_id, change, "reinstated by operator")

    async def set_approved_scopes(
        self, client_id: str, provider_id: str, scopes: Sequence[str]
    ) -> AgentRecord:
        """Set the approved scopes of one provider for an agent; live tokens holding a scope
        that is no longer approved are revoked."""
        provider = self._provider(provider_id)
        if provider is None:
            raise _error(
                ErrorCode.INVALID_REQUEST, f"unknown provider {provider_id!r}", field="provider_id"
            )
        unknown = [s for s in scopes if s not in provider.scopes]
        if unknown:
            raise _error(
                ErrorCode.INVALID_REQUEST, f"scopes not offered: {unknown}", field="scopes"
            )
        wanted = list(dict.fromkeys(scopes))

        def change(agent: AgentRecord) -> None:
            approval = agent.provider(provider_id)
            if approval is None:
                approval = ProviderApproval(provider_id, list(wanted), [], [], [], None)
                agent.providers.append(approval)
            approval.approved_scopes = list(wanted)
            approval.denied_scopes = [s for s in approval.requested_scopes if s not in wanted]
            approval.pending_scopes = []
            approval.denial_reason = "not approved by operator" if approval.denied_scopes else None
            if agent.status in ("pending", "denied") and not any(
                a.pending_scopes for a in agent.providers
            ):
                agent.status = (
                    "approved" if any(a.approved_scopes for a in agent.providers) else ("denied")
                )
                agent.approval_expires = self.clock.now() + self.policy.approval_lifetime(
                    agent.providers
                )

        agent = await self._change_agent(client_id, change, f"scopes of {provider_id} set")

        async def narrow() -> None:
            now = self.clock.now()
            for token in await self.stores.tokens.list(
                client_id=client_id, provider_id=provider_id, active_at=now, limit=100_000
            ):
                if any(s not in wanted for s in token.scopes):
                    await self._revoke_one(token, "operator")

        await self._run(_Ctx("agent_updated", client_id=client_id), narrow())
        return agent

    async def _change_agent(
        self,
        client_id: str,
        change: Callable[[AgentRecord], None],
        reason: str,
        *,
        revoke_by: str | None = None,
    ) -> AgentRecord:
        async def work() -> AgentRecord:
            agent = await self.stores.agents.get(client_id)
            if agent is None:
                raise _error(
                    ErrorCode.AGENT_NOT_REGISTERED, "unknown client_id", reason="unknown_client"
                )
            change(agent)
            agent.updated_at = self.clock.now()
            await self.stores.agents.update(agent)
            revoked = 0
            if revoke_by is not None:
                revoked = await self.stores.tokens.revoke_matching(
                    self.clock.now(), revoke_by, client_id=client_id
                )
            await self.audit(
                "agent_updated",
                agent_id=agent.agent_id,
                client_id=client_id,
                effective_scopes=[s for a in agent.providers for s in a.approved_scopes],
                denied_scopes=[s for a in agent.providers for s in a.denied_scopes],
                reason=reason,
                details={"agent_status": agent.status, "tokens_revoked": revoked},
            )
            if revoked:
                await self.audit(
                    "token_revoked",
                    agent_id=agent.agent_id,
                    client_id=client_id,
                    reason=reason,
                    details={"tokens": revoked},
                )
            return agent

        return await self._run(_Ctx("agent_updated", client_id=client_id), work())

    async def list_tokens(
        self,
        *,
        client_id: str | None = None,
        user_id: str | None = None,
        provider_id: str | None = None,
        active_only: bool = True,
        limit: int = 100,
    ) -> list[TokenRecord]:
        """Issued tokens (hashes and metadata only), newest first."""
        work = self.stores.tokens.list(
            client_id=client_id,
            user_id=user_id,
            provider_id=provider_id,
            active_at=self.clock.now() if active_only else None,
            limit=max(1, min(limit, 1000)),
        )
        return await self._run(_Ctx("agent_updated"), work)

    async def revoke_token_admin(self, token_id: str) -> bool:
        """Revoke one token by its id (operator); ``False`` if unknown or already revoked."""

        async def work() -> bool:
            token = await self.stores.tokens.get(token_id)
            return token is not None and await self._revoke_one(token, "operator")

        return await self._run(_Ctx("agent_updated"), work())

    async def query_audit(
        self,
        *,
        agent_id: str | None = None,
        user_id: str | None = None,
        provider_id: str | None = None,
        event: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Audit events, newest first."""
        query = AuditQuery(
            agent_id=agent_id,
            user_id=user_id,
            provider_id=provider_id,
            event=event,
            since=since,
            until=until,
            limit=max(1, min(limit, 1000)),
        )

        async def work() -> list[AuditEvent]:
            return list(await self.stores.audit.query(query))

        return await self._run(_Ctx("agent_updated"), work())


def _approved_providers(agent: AgentRecord) -> list[ApprovedProvider]:
    return [
        ApprovedProvider(
            provider_id=a.provider_id,
            approved_scopes=list(a.approved_scopes),
            denied_scopes=list(a.denied_scopes),
            denial_reason=a.denial_reason
            or ("awaiting operator review" if a.pending_scopes else None),
        )
        for a in agent.providers
    ]
