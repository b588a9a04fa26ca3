"""The gateway user's "Connected agents" page: sign in through the provider, see, revoke.

The gateway is already each provider's OAuth client. A user picks the provider, signs in at that
provider's own login (authorization code + PKCE S256, ``{base}{root}/callback`` as redirect URI,
the provider's ``user_login_scopes``), and the gateway learns their provider user id exactly as it
does after an agent's consent (``OAuthBridge.exchange_code`` then ``user_id``). The provider token
is used once, for that, and forgotten. The page lists the agents holding a grant of this user *at
this provider* and revokes one through ``ATHEngine.revoke_for_user``; its next call fails with
``TOKEN_REVOKED``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from athkit.console._store import ConsoleSession
from athkit.console._web import (
    ConsoleSite,
    CookieSpec,
    csrf_ok,
    form_text,
    read_form,
)
from athkit.protocol import code_challenge_s256, generate_code_verifier
from athkit.server import ProviderSettings

LOGIN_LIFETIME = 600  # seconds a user has to finish signing in at the provider


@dataclass
class UserConsole(ConsoleSite, kind="user", home="/agents", failure_title="Something failed"):
    """The user pages of one deployment, mounted under ``root`` (e.g. ``/account``)."""

    state_cookie: CookieSpec
    session_lifetime: int = 3600

    @property
    def redirect_uri(self) -> str:
        """Register this at each provider, beside ``{base}/ath/callback``."""
        return f"{self.engine.base_url}{self.root}/callback"

    def _frame(self, session: ConsoleSession | None) -> dict[str, Any]:
        if session is None:
            return {"user": None, "csrf": ""}
        provider = self.engine.settings.provider(session.provider_id or "")
        user = {
            "name": session.display_name or session.subject,
            "provider": provider.display_name if provider else session.provider_id,
        }
        return {"user": user, "csrf": session.csrf_token}

    def _render(
        self,
        request: Request,
        template: str,
        session: ConsoleSession | None,
        status_code: int = 200,
        **context: Any,
    ) -> Response:
        title = context.pop("title", "Connected agents")
        page = {**self._frame(session), "title": title, **context}
        return self._show(request, template, status_code, page)

    def _guard(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return self._refused(request, None, exc)

        return endpoint

    # --- pages ----------------------------------------------------------------------------

    async def agents(self, request: Request) -> Response:
        """Signed in: this user's agents at this provider. Not signed in: the providers."""
        session = await self._session(request)
        if session is None:
            return self._render(
                request,
                "account_login.html",
                None,
                providers=list(self.engine.settings.providers),
            )
        grants = [
            g
            for g in await self.engine.list_user_grants(session.subject)
            if g.provider_id == session.provider_id
        ]
        return self._render(request, "account_agents.html", session, grants=grants)

    async def login(self, request: Request) -> Response:
        """Send the browser to the provider's own login (code + PKCE S256)."""
        provider = self._provider(request.path_params["provider_id"])
        if provider is None:
            return self._message(request, None, "Unknown service", "No such provider here.", 404)
        state = secrets.token_urlsafe(32)
        verifier = generate_code_verifier()
        await self.store.begin_user_login(
            self.deployment, provider.provider_id, state, verifier, LOGIN_LIFETIME
        )
        url = self.engine.oauth.authorization_url(
            provider,
            state=state,
            code_challenge=code_challenge_s256(verifier),
            redirect_uri=self.redirect_uri,
            scopes=_login_scopes(provider),
            resource=None,
            ath_context=None,
        )
        response = RedirectResponse(url, status_code=303)
        # Binds the sign-in to this browser (no login CSRF); Lax, as the provider sends it back.
        self.state_cookie.set(response, state, LOGIN_LIFETIME)
        return response

    async def callback(self, request: Request) -> Response:
        """The provider's redirect: check state, learn the user id, start a user session."""
        params = request.query_params
        state = params.get("state", "")
        bound = self.state_cookie.read(request) or ""
        if not state or not hmac.compare_digest(state.encode(), bound.encode()):
            await self.engine.audit("access_denied", reason="user sign-in: state mismatch")
            return self._message(
                request, None, "Sign-in refused", "This sign-in did not start here.", 400
            )
        pending = await self.store.take_user_login(self.deployment, state)
        if pending is None:
            return self._message(
                request, None, "Sign-in expired", "Start again from the sign-in button.", 400
            )
        provider_id, verifier = pending
        provider = self._provider(provider_id)
        code = params.get("code")
        if provider is None or params.get("error") or not code or len(code) > 2048:
            return self._message(request, None, "Not signed in", "The sign-in was cancelled.", 400)
        tokens = await self.engine.oauth.exchange_code(
            provider,
            code=code,
            code_verifier=verifier,
            redirect_uri=self.redirect_uri,
            resource=None,
        )
        user_id = await self.engine.oauth.user_id(provider, tokens)
        cookie, _ = await self.store.start_session(
            self.deployment,
            "user",
            user_id,
            self.session_lifetime,
            provider_id=provider_id,
            display_name=user_id,
        )
        await self.engine.audit(
            "user_signed_in",
            user_id=user_id,
            provider_id=provider_id,
            reason="user signed in to see connected agents",
        )
        # A page of our own, not a redirect: the SameSite=Strict session cookie is only sent
        # on a navigation that starts on this site, and this one started at the provider.
        response = self._render(
            request, "account_continue.html", None, target=f"{self.root}/agents"
        )
        self.cookie.set(response, cookie, self.session_lifetime)
        self.state_cookie.clear(response)
        return response

    async def revoke(self, request: Request) -> Response:
        """Revoke one agent for this user at this provider (CSRF-checked)."""
        session = await self._session(request)
        if session is None:
            return RedirectResponse(f"{self.root}/agents", status_code=303)
        form = await read_form(request)
        if not csrf_ok(form, session.csrf_token):
            await self.engine.audit(
                "access_denied",
                user_id=session.subject,
                reason="connected agents form without its CSRF token",
            )
            return self._message(
                request, session, "This form has expired", "Reload the page and try again.", 403
            )
        client_id = form_text(form, "client_id", 256)
        if not client_id:
            return self._message(request, session, "Nothing revoked", "No agent was named.", 400)
        # ATH §4.7: the user revokes through the implementer; every token of this agent for
        # this user at this provider dies at once, and the stored provider grant goes.
        await self.engine.revoke_for_user(
            session.subject, client_id=client_id, provider_id=session.provider_id
        )
        return RedirectResponse(f"{self.root}/agents?n=revoked", status_code=303)

    async def logout(self, request: Request) -> Response:
        """End the user's session (CSRF-checked)."""
        session = await self._session(request)
        if session is not None:
            form = await read_form(request)
            if not csrf_ok(form, session.csrf_token):
                return self._message(
                    request, session, "This form has expired", "Reload and try again.", 403
                )
            await self.store.end_session(session)
        response = RedirectResponse(f"{self.root}/agents?n=signedout", status_code=303)
        self.cookie.clear(response)
        return response

    def _provider(self, provider_id: str) -> ProviderSettings | None:
        return self.engine.settings.provider(provider_id)

    def routes(self) -> list[Route]:
        """The user routes, relative to the mount point."""
        g = self._guard

        async def home(_: Request) -> Response:
            return RedirectResponse(f"{self.root}/agents", status_code=303)

        return [
            Route("/", home, methods=["GET"]),
            Route("/agents", g(self.agents), methods=["GET"]),
            Route("/agents/revoke", g(self.revoke), methods=["POST"]),
            Route("/login/{provider_id}", g(self.login), methods=["GET"]),
            Route("/callback", g(self.callback), methods=["GET"]),
            Route("/logout", g(self.logout), methods=["POST"]),
        ]


def _login_scopes(provider: ProviderSettings) -> list[str]:
    scopes = getattr(provider, "user_login_scopes", None)
    return list(scopes) if scopes else ["openid"]
