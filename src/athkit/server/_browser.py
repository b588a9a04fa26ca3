"""The user's side (ATH §4.3, §4.4, §4.7): the consent link that binds the browser to the
session, the provider's callback that records the consent and issues the one-time ATH code, and
the user's own "Connected agents" (list, disconnect)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from athkit.protocol import (
    ATHError,
    ErrorCode,
    code_challenge_s256,
    generate_secret,
    hash_secret,
)
from athkit.server._audit import AuditContext
from athkit.server._core import (
    ATH_CODE_PREFIX,
    EngineCore,
    ath_error,
    secret_hash_matches,
    session_used,
)
from athkit.server._oauth import add_query
from athkit.server._records import UserGrant


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
    expires_at: float | None = None  # when the code (the session) expires


class BrowserEndpoints(EngineCore):
    """What the user's browser reaches: ``begin_consent`` and ``callback``; and what the user
    does through the service's own pages: ``list_user_grants``, ``revoke_for_user``."""

    async def begin_consent(self, session_id: str, presented_binding: str | None) -> ConsentStart:
        """The user's browser opened the consent link: bind it to the session and send it to
        the provider (ATH §4.3).

        The first visit returns a fresh ``binding_secret`` for the adapter to set as an HttpOnly
        cookie. A later visit must present that secret; another browser is refused with
        ``STATE_MISMATCH``.
        """
        ctx = AuditContext("access_denied")
        return await self._run(ctx, self._begin_consent(session_id, presented_binding, ctx))

    async def _begin_consent(
        self, session_id: str, presented_binding: str | None, ctx: AuditContext
    ) -> ConsentStart:
        session = self._check_session(
            await self.stores.sessions.get(session_id),
            ctx,
            missing=ath_error(
                ErrorCode.SESSION_NOT_FOUND, "unknown ATH session", reason="unknown_session"
            ),
            expired_message="this authorization link has expired; ask the agent to start again",
        )
        agent, provider = await self._session_parties(session)
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
                raise _other_browser()
        elif session.status == "bound":
            # Same browser coming back (e.g. reload): it must hold the binding secret.
            if presented_binding is None or not secret_hash_matches(
                presented_binding, session.binding_hash
            ):
                raise _other_browser()
            won = await self.stores.sessions.transition(
                session.session_id, "bound", "bound", oauth_state_hash=hash_secret(oauth_state)
            )
            if not won:
                raise session_used()
        else:
            raise session_used()
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
        ctx = AuditContext("access_denied")
        return await self._run(ctx, self._callback(state, code, error, binding_for, ctx))

    async def _callback(
        self,
        state: str | None,
        code: str | None,
        error: str | None,
        binding_for: Callable[[str], str | None],
        ctx: AuditContext,
    ) -> CallbackResult:
        if (
            (state and len(state) > 512)
            or (code and len(code) > 2048)
            or (error and len(error) > 256)
        ):
            raise ath_error(
                ErrorCode.INVALID_REQUEST,
                "callback parameter too long",
                reason="parameter_too_long",
            )
        # ATH §4.4: check state.
        if not state:
            raise ath_error(
                ErrorCode.STATE_MISMATCH, "the callback carries no state", reason="missing_state"
            )
        session = self._check_session(
            await self.stores.sessions.get_by_state_hash(hash_secret(state)),
            ctx,
            missing=ath_error(
                ErrorCode.STATE_MISMATCH,
                "the callback's state matches no session",
                reason="wrong_state",
            ),
            expired_message="the authorization session has expired",
        )
        if session.status != "bound":
            raise session_used("this authorization was already completed")
        # ATH §4.3: the same browser that opened the consent link came back.
        presented = binding_for(session.session_id)
        if presented is None or not secret_hash_matches(presented, session.binding_hash):
            raise ath_error(
                ErrorCode.STATE_MISMATCH,
                "this browser did not start this authorization",
                reason="browser_binding",
            )
        agent, provider = await self._session_parties(session)
        if error is None and not code:
            raise ath_error(
                ErrorCode.INVALID_REQUEST,
                "the callback carries no code",
                field="code",
                reason="missing_code",
            )
        # ATH §4.5 single-use: claim the session before anything irreversible. The same callback
        # arriving twice at once (a double click, a browser retry) races here, and exactly one
        # request moves it bound → exchanging. Exchanging the provider's code first would let
        # both reach the provider, which sees the second exchange as code reuse and revokes the
        # grant the first one stores.
        if not await self.stores.sessions.transition(session.session_id, "bound", "exchanging"):
            raise session_used("this authorization is already being completed")
        if error is not None:
            denied = error == "access_denied"
            await self.stores.sessions.transition(
                session.session_id,
                "exchanging",
                "denied" if denied else "failed",
                failure_reason=error[:128],
            )
            await self.audit_session(
                "access_denied",
                session,
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
        # ATH §4.4: exchange server-side, form-encoded, with the PKCE verifier (and resource).
        try:
            assert code is not None
            tokens = await self.oauth.exchange_code(
                provider,
                code=code,
                code_verifier=session.code_verifier,
                redirect_uri=self.settings.callback_url,
                resource=session.resource,
            )
            user_id = await self.oauth.user_id(provider, tokens)
        except Exception as exc:
            # Whatever went wrong (the provider refused, a store failed), the claimed session
            # ends failed: the provider's code cannot be exchanged twice anyway.
            reason = exc.message if isinstance(exc, ATHError) else type(exc).__name__
            await self.stores.sessions.transition(
                session.session_id, "exchanging", "failed", failure_reason=reason[:128]
            )
            raise
        ctx.user_id = user_id
        # ATH §4.4: record what the user actually consented to.
        consented = (
            list(tokens.scope) if tokens.scope is not None else list(session.requested_scopes)
        )
        grant = await self.vault.store_grant(agent, provider, user_id, consented, tokens)
        ath_code = generate_secret(ATH_CODE_PREFIX)
        won = await self.stores.sessions.transition(
            session.session_id,
            "exchanging",
            "consented",
            ath_code_hash=hash_secret(ath_code),
            user_id=user_id,
            consented_scopes=consented,
            grant_id=grant.grant_id,
        )
        if not won:
            raise session_used("this authorization was already completed")
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
            session.expires_at,
        )

    async def revoke_for_user(
        self,
        user_id: str,
        *,
        client_id: str | None = None,
        token_id: str | None = None,
        provider_id: str | None = None,
    ) -> int:
        """ATH §4.7, user side (the service authenticated ``user_id``): revoke one of the
        user's tokens, or disconnect an agent (all its tokens for this user, and the stored
        provider grant). With ``provider_id`` (a gateway, where user ids are per provider),
        only what the user holds at that provider. Returns how many tokens died."""
        ctx = AuditContext(
            "access_denied", user_id=user_id, client_id=client_id, provider_id=provider_id
        )
        return await self._run(
            ctx, self._revoke_for_user(user_id, client_id, token_id, provider_id)
        )

    async def _revoke_for_user(
        self, user_id: str, client_id: str | None, token_id: str | None, provider_id: str | None
    ) -> int:
        if token_id is not None:
            token = await self.stores.tokens.get(token_id)
            if token is None or token.user_id != user_id:
                return 0
            if provider_id is not None and token.provider_id != provider_id:
                return 0
            return 1 if await self._revoke_one(token, "user") else 0
        if client_id is None:
            raise ath_error(
                ErrorCode.INVALID_REQUEST, "name a token_id or a client_id", field="client_id"
            )
        now = self.clock.now()
        live = await self.stores.tokens.list(
            client_id=client_id,
            user_id=user_id,
            provider_id=provider_id,
            active_at=now,
            limit=10_000,
        )
        if provider_id is None:
            count = await self.stores.tokens.revoke_matching(
                now, "user", client_id=client_id, user_id=user_id
            )
        else:
            count = 0
            for token in live:
                count += await self.stores.tokens.revoke(token.token_id, now, "user")
        for grant in await self.stores.grants.list_for_user(user_id):
            if grant.client_id == client_id and provider_id in (None, grant.provider_id):
                await self.stores.grants.delete(grant.grant_id)
        agent_id = live[0].agent_id if live else None
        await self.audit(
            "token_revoked",
            agent_id=agent_id,
            client_id=client_id,
            user_id=user_id,
            provider_id=provider_id,
            reason="agent disconnected by the user",
            details={"tokens": count},
        )
        return count

    # --- validation (native API calls and the gateway proxy) ------------------------------

    async def list_user_grants(self, user_id: str) -> list[UserGrant]:
        """The user's "Connected agents": agent name, provider, scopes and since when."""
        ctx = AuditContext("access_denied", user_id=user_id)
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


def _other_browser() -> ATHError:
    return ath_error(
        ErrorCode.STATE_MISMATCH,
        "this authorization link was already opened in another browser",
        reason="browser_binding",
    )
