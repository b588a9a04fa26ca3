"""The agent's side of the handshake (ATH §4.1–§4.3, §4.5, §4.7): registration, status,
authorization, token exchange and revocation — each verifying the agent's attestation for its
endpoint's audience (§2)."""

from __future__ import annotations

from urllib.parse import urlsplit

from athkit.protocol import (
    AgentStatusResponse,
    AuthorizeRequest,
    AuthorizeResponse,
    ErrorCode,
    RegisterRequest,
    RegisterResponse,
    RevokeRequest,
    TokenRequest,
    TokenResponse,
    generate_code_verifier,
    generate_secret,
    hash_secret,
    intersect_scopes,
    redirect_uri_allowed,
)
from athkit.server._audit import AuditContext
from athkit.server._core import (
    ACCESS_TOKEN_PREFIX,
    CLIENT_SECRET_PREFIX,
    EngineCore,
    approved_providers,
    ath_error,
    iso,
    secret_hash_matches,
    session_used,
)
from athkit.server._records import AgentRecord, SessionRecord, TokenRecord
from athkit.server._stores import DuplicateAgentError

_PURGE_INTERVAL = 60.0  # forget expired sessions at most this often (piggybacked on authorize)
_SESSION_GRACE = 3600.0  # keep expired sessions an hour, so late calls still say SESSION_EXPIRED


class AgentEndpoints(EngineCore):
    """What an agent calls: ``register``, ``agent_status``, ``authorize``, ``exchange_token``
    and ``revoke``."""

    _next_purge: float = 0.0

    async def register(self, request: RegisterRequest) -> RegisterResponse:
        """ATH §4.1: verify the attestation, apply the approval policy, store the registration
        and return its client credentials (the secret only this once)."""
        ctx = AuditContext(
            "agent_registration_denied",
            agent_id=request.agent_id,
            requested=[s for p in request.requested_providers for s in p.scopes],
        )
        return await self._run(ctx, self._register(request, ctx))

    async def _register(self, request: RegisterRequest, ctx: AuditContext) -> RegisterResponse:
        # ATH §4.1: verify the attestation; its sub must equal agent_id (aud = base URL, §2).
        verified = await self._verify(request.agent_attestation, self.base_url, request.agent_id)
        # Our decision (ATH §4.4): our own callback as the agent's redirect (the public SDKs'
        # default) means "no redirect"; the user finishes on the completion page.
        redirect_uris = [u for u in request.redirect_uris or [] if not self.is_own_callback(u)]
        if redirect_uris:
            for uri in redirect_uris:
                parts = urlsplit(uri)
                if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
                    raise ath_error(
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
            redirect_uris=redirect_uris or None,
            purpose=request.purpose,
        )
        try:
            # ATH §4.1: a second registration of the same agent_id answers 409. The store's
            # unique agent_id refuses it atomically (no read first: one round trip less).
            await self.stores.agents.insert(agent)
        except DuplicateAgentError:
            raise ath_error(
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
            approved_providers=approved_providers(agent),
            approval_expires=iso(agent.approval_expires),
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
        ctx = AuditContext("access_denied", client_id=client_id)
        return await self._run(ctx, self._agent_status(client_id, client_secret, attestation, ctx))

    async def _agent_status(
        self, client_id: str, client_secret: str | None, attestation: str | None, ctx: AuditContext
    ) -> AgentStatusResponse:
        # ATH §4.2: must be authenticated; an agent may read only its own registration.
        if client_secret is not None:
            agent = await self._authenticate_client(client_id, client_secret)
        elif attestation is not None:
            verified = await self._verify(attestation, self.base_url, None)
            ctx.agent_id = verified.attestation.sub
            found = await self.stores.agents.get(client_id)
            if found is None or found.agent_id != verified.attestation.sub:
                raise ath_error(
                    ErrorCode.AGENT_NOT_REGISTERED,
                    "no registration with this client_id for this agent",
                    reason="not_own_registration",
                )
            agent = found
        else:
            raise ath_error(
                ErrorCode.INVALID_CLIENT,
                "authenticate with HTTP Basic client credentials or an X-ATH-Attestation header",
                reason="unauthenticated",
            )
        ctx.agent_id = agent.agent_id
        return AgentStatusResponse(
            client_id=agent.client_id,
            agent_id=agent.agent_id,
            agent_status=agent.status if agent.status != "suspended" else "denied",
            approved_providers=approved_providers(agent),
            approval_expires=iso(agent.approval_expires),
        )

    # --- §4.3 authorize -------------------------------------------------------------------

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResponse:
        """ATH §4.3: check the agent and its approval, open a ≤10-minute single-use session and
        return the consent link for the user's browser."""
        ctx = AuditContext(
            "access_denied",
            client_id=request.client_id,
            provider_id=request.provider_id,
            requested=list(request.scopes),
        )
        return await self._run(ctx, self._authorize(request, ctx))

    async def _authorize(self, request: AuthorizeRequest, ctx: AuditContext) -> AuthorizeResponse:
        agent = await self.stores.agents.get(request.client_id)
        if agent is None:
            raise ath_error(
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
            raise ath_error(
                ErrorCode.PROVIDER_NOT_APPROVED,
                f"the agent is not approved for provider {request.provider_id!r}",
                reason="provider_not_approved",
            )
        # ATH §4.3: every requested scope lies within the approved scopes.
        outside = [s for s in request.scopes if s not in approval.approved_scopes]
        if outside:
            # An unknown scope (a typo) is told apart from one the agent was not approved for.
            unknown = [s for s in outside if s not in provider.scopes]
            unapproved = [s for s in outside if s in provider.scopes]
            parts = []
            if unknown:
                parts.append(
                    f"provider {request.provider_id!r} offers no scope {', '.join(unknown)} "
                    f"(it offers: {', '.join(provider.scopes)})"
                )
            if unapproved:
                parts.append(f"scopes not approved for this agent: {', '.join(unapproved)}")
            raise ath_error(
                ErrorCode.SCOPE_NOT_APPROVED,
                "; ".join(parts),
                reason="scope_not_approved",
                denied_scopes=outside,
                unknown_scopes=unknown,
                approved_scopes=list(approval.approved_scopes),
            )
        # Our decision (ATH §4.4): our own callback as user_redirect_uri counts as none.
        user_redirect_uri = request.user_redirect_uri
        if user_redirect_uri is not None and self.is_own_callback(user_redirect_uri):
            user_redirect_uri = None
        # ATH §4.1: redirect URIs match a registered one (loopback on any port, RFC 8252 §7.3);
        # without registered URIs, a request carrying one is rejected.
        if user_redirect_uri is not None and not redirect_uri_allowed(
            user_redirect_uri, agent.redirect_uris or []
        ):
            raise ath_error(
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
            user_redirect_uri=user_redirect_uri,
            resource=request.resource or provider.resource,
        )
        await self.stores.sessions.insert(session)
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_INTERVAL
            await self.purge_expired()
        await self.audit_session(
            "authorization_started",
            session,
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

    async def exchange_token(self, request: TokenRequest) -> TokenResponse:
        """ATH §4.5: authenticate the client, verify a fresh attestation (``aud`` = token
        endpoint), consume the session, intersect scopes and issue a bound token."""
        ctx = AuditContext("access_denied", client_id=request.client_id)
        return await self._run(ctx, self._exchange_token(request, ctx))

    async def _exchange_token(self, request: TokenRequest, ctx: AuditContext) -> TokenResponse:
        agent = await self._authenticate_client(request.client_id, request.client_secret)
        ctx.agent_id = agent.agent_id
        # ATH §4.5: fresh attestation, aud = token endpoint URL, sub = registered agent_id.
        await self._verify(request.agent_attestation, self.settings.token_endpoint, agent.agent_id)
        self._require_approved(agent)
        found = await self.stores.sessions.get(request.ath_session_id)
        # ATH §4.5: the session belongs to this client and is not expired (≤ 10 minutes).
        session = self._check_session(
            found if found is not None and found.client_id == agent.client_id else None,
            ctx,
            missing=ath_error(
                ErrorCode.SESSION_NOT_FOUND,
                "unknown ATH session for this client",
                reason="unknown_session",
            ),
            expired_message="the ATH session has expired; authorize again",
        )
        if session.status == "denied":
            await self.stores.sessions.transition(session.session_id, "denied", "consumed")
            raise ath_error(ErrorCode.USER_DENIED, "the user refused consent", reason="user_denied")
        if session.status == "failed":
            await self.stores.sessions.transition(session.session_id, "failed", "consumed")
            raise ath_error(
                ErrorCode.OAUTH_ERROR,
                "the provider's authorization failed",
                reason=session.failure_reason or "provider_error",
            )
        if session.status == "consumed":
            # ATH §4.5: the session is single-use.
            raise session_used("this ATH session was already used")
        if session.status != "consented":
            raise ath_error(
                ErrorCode.SESSION_NOT_FOUND,
                "the user has not completed consent yet",
                reason="consent_incomplete",
            )
        # Our decision (ATH §4.4): a code that is present must match (constant time). Only a
        # session without an agent redirect may omit it (RFC 8628 precedent: the session id is
        # the agent's alone, and this call also proved the client secret and a fresh
        # attestation); a session that redirected to the agent needs the code it carried.
        if request.code is None:
            if session.user_redirect_uri is not None:
                raise ath_error(
                    ErrorCode.INVALID_REQUEST,
                    "code is required: this session sent the user back to the agent's "
                    "redirect URI with it",
                    field="code",
                    reason="missing_code",
                )
        elif not secret_hash_matches(request.code, session.ath_code_hash):
            raise ath_error(
                ErrorCode.SESSION_NOT_FOUND,
                "wrong authorization code for this session",
                reason="wrong_code",
            )
        # ATH §4.5: consumed on success — exactly one exchange can win.
        if not await self.stores.sessions.transition(session.session_id, "consented", "consumed"):
            raise session_used("this ATH session was already used")
        approval = agent.provider(session.provider_id)
        approved = list(approval.approved_scopes) if approval else []
        consented = list(session.consented_scopes or [])
        # ATH §5: effective = agent_approved ∩ user_consented ∩ requested.
        breakdown = intersect_scopes(approved, consented, session.requested_scopes)
        if not breakdown.effective:
            # ATH §5: never issue on an empty set.
            raise ath_error(
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
        await self.audit_token(
            "access_granted",
            record,
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
        ctx = AuditContext("access_denied", client_id=request.client_id)
        await self._run(ctx, self._revoke(request, ctx))

    async def _revoke(self, request: RevokeRequest, ctx: AuditContext) -> None:
        # ATH §4.7: unauthenticated revocation is rejected.
        if not request.client_id or not request.client_secret:
            raise ath_error(
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
