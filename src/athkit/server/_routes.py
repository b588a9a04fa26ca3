"""The HTTP adapter of the engine (Starlette): every native-mode endpoint of ATH §8.

It parses, calls the engine and renders the engine's errors (ATH §7); it holds no state. A
native service mounts these routes; the gateway mounts them too (plus its proxy).
"""

from __future__ import annotations

import base64
import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from athkit.pages import ath_error_page, message_page, wants_html
from athkit.protocol import (
    AGENTS_PATH,
    APP_DISCOVERY_PATH,
    ATTESTATION_HEADER,
    AUTHORIZE_PATH,
    CALLBACK_PATH,
    CONSENT_PATH,
    ENDPOINTS_PREFIX,
    OPENAPI_PATH,
    REGISTER_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    USER_GRANTS_PATH,
    USER_REVOKE_PATH,
    AppAuth,
    AppDiscovery,
    ATHError,
    ATHModel,
    AuthorizeRequest,
    ErrorCode,
    RegisterRequest,
    RevokeRequest,
    TokenRequest,
    origin_of,
)
from athkit.server._completion import completion_page
from athkit.server._engine import ATHEngine
from athkit.server._isotime import to_iso
from athkit.server._web import (
    NO_STORE,
    binding_cookie_name,
    cookie_tag,
    error_response,
    fail_closed,
    invalid_request,
    parse_model,
    reject,
)

_In = TypeVar("_In", bound=ATHModel)

UserAuthenticator = Callable[[Request], "Awaitable[str | None] | str | None"]
"""Returns the id of the service's logged-in user for a request (e.g. from its session cookie),
or ``None``. The id must be the provider's user id (what ``userinfo`` returns)."""


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic`` header (RFC 7617), else ``None``."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text in the header
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


async def authenticate_user(authenticator: UserAuthenticator, request: Request) -> str | None:
    """Call a sync or async :data:`UserAuthenticator`."""
    result = authenticator(request)
    if inspect.isawaitable(result):
        result = await result
    return result if isinstance(result, str) and result else None


def _completion_page(
    title: str, message: str, *, tone: str, advice: str, body_html: str | None = None
) -> HTMLResponse:
    return message_page(title, message, tone=tone, advice=advice, body_html=body_html)


def browser_error(request: Request, exc: ATHError) -> Response:
    """An endpoint a person opens in a browser: an HTML page when the browser asks for one,
    the ATH JSON error (ATH §7) for an API client."""
    if wants_html(request.headers.get("accept")):
        return ath_error_page(exc)
    return error_response(exc)


class _Handlers:
    def __init__(self, engine: ATHEngine, user_authenticator: UserAuthenticator | None) -> None:
        self.engine = engine
        self.limit = engine.settings.max_body_bytes
        self.tag = cookie_tag(engine.base_url)
        # How the browser-binding cookie is set and later cleared (ATH §4.3, §4.4).
        self._binding_cookie: dict[str, Any] = {
            "path": ENDPOINTS_PREFIX,
            "httponly": True,
            "samesite": "lax",
            "secure": engine.base_url.startswith("https://"),
        }
        self.user_authenticator = user_authenticator

    # GET /.well-known/ath-app.json — ATH §3 (native mode)
    async def discovery(self, request: Request) -> Response:
        s = self.engine.settings
        scopes: list[str] = []
        for provider in self.engine.policy.providers:
            scopes.extend(sc for sc in provider.scopes if sc not in scopes)
        doc = AppDiscovery(
            app_id=s.app_id,
            name=s.name,
            auth=AppAuth(
                authorization_endpoint=s.base_url + AUTHORIZE_PATH,
                token_endpoint=s.token_endpoint,
                registration_endpoint=s.base_url + REGISTER_PATH,
                scopes_supported=scopes,
                agent_attestation_required=True,
            ),
            api_base=s.resolved_api_base,
        )
        body = doc.dump()
        body["providers"] = [
            {"provider_id": p.provider_id, "display_name": p.display_name}
            for p in self.engine.policy.providers
        ]
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})

    # POST /ath/agents/register — ATH §4.1
    async def register(self, request: Request) -> Response:
        return await self._json_step(
            request,
            RegisterRequest,
            self.engine.register,
            refused="agent_registration_denied",
            status_code=201,
        )

    async def _json_step(
        self,
        request: Request,
        model: type[_In],
        step: Callable[[_In], Awaitable[ATHModel]],
        *,
        allow_form: bool = False,
        refused: str = "access_denied",
        status_code: int = 200,
    ) -> Response:
        """One JSON step of the handshake: the body read as ``model`` (an unreadable one is
        audited as ``refused``), ``step`` taken with it, and its answer, never cached."""
        try:
            body = await parse_model(request, model, self.limit, allow_form=allow_form)
        except ATHError as exc:
            return await reject(self.engine, exc, refused)
        try:
            response = await step(body)
        except ATHError as exc:
            return error_response(exc)
        return JSONResponse(response.dump(), status_code=status_code, headers=NO_STORE)

    # GET /ath/agents/{client_id} — ATH §4.2
    async def agent_status(self, request: Request) -> Response:
        client_id = request.path_params["client_id"]
        basic = basic_credentials(request)
        attestation = request.headers.get(ATTESTATION_HEADER)
        secret: str | None = None
        if basic is not None:
            # HTTP Basic names the client; it must be the one asked about (no enumeration).
            secret = basic[1] if basic[0] == client_id else ""
        try:
            response = await self.engine.agent_status(
                client_id, client_secret=secret, attestation=attestation if secret is None else None
            )
        except ATHError as exc:
            return error_response(exc)
        return JSONResponse(response.dump(), headers=NO_STORE)

    # POST /ath/authorize — ATH §4.3
    async def authorize(self, request: Request) -> Response:
        return await self._json_step(request, AuthorizeRequest, self.engine.authorize)

    # GET /ath/consent/{session_id} — ATH §4.3 browser binding
    async def consent(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]
        cookie = binding_cookie_name(self.tag, session_id)
        try:
            start = await self.engine.begin_consent(session_id, request.cookies.get(cookie))
        except ATHError as exc:
            return browser_error(request, exc)
        response = RedirectResponse(start.redirect_url, status_code=302, headers=NO_STORE)
        response.headers["Referrer-Policy"] = "no-referrer"
        if start.binding_secret is not None:
            response.set_cookie(
                cookie,
                start.binding_secret,
                max_age=max(1, int(start.expires_at - self.engine.clock.now())),
                **self._binding_cookie,
            )
        return response

    # GET /ath/callback — ATH §4.4
    async def callback(self, request: Request) -> Response:
        params = request.query_params
        try:
            result = await self.engine.callback(
                state=params.get("state"),
                code=params.get("code"),
                error=params.get("error"),
                binding_for=lambda sid: request.cookies.get(binding_cookie_name(self.tag, sid)),
            )
        except ATHError as exc:
            return browser_error(request, exc)
        response: Response
        if result.redirect_url is not None:
            response = RedirectResponse(result.redirect_url, status_code=303, headers=NO_STORE)
            response.headers["Referrer-Policy"] = "no-referrer"
        elif result.denied:
            response = _completion_page(
                "Access not granted",
                "You did not allow the agent access.",
                tone="info",
                advice="Nothing was shared. You can close this window.",
            )
        else:
            left = (result.expires_at or 0) - self.engine.clock.now()
            response = completion_page(
                base_url=self.engine.base_url,
                session_id=result.session_id,
                code=result.code or "",
                agent_name=result.agent_name,
                minutes=math.ceil(left / 60),
            )
        response.delete_cookie(
            binding_cookie_name(self.tag, result.session_id), **self._binding_cookie
        )
        return response

    # POST /ath/token — ATH §4.5
    async def token(self, request: Request) -> Response:
        return await self._json_step(
            request, TokenRequest, self.engine.exchange_token, allow_form=True
        )

    # POST /ath/revoke — ATH §4.7 (agents)
    async def revoke(self, request: Request) -> Response:
        try:
            body = await parse_model(request, RevokeRequest, self.limit, allow_form=True)
        except ATHError as exc:
            return await reject(self.engine, exc)
        basic = basic_credentials(request)
        if body.client_id is None and basic is not None:
            body.client_id, body.client_secret = basic
        try:
            await self.engine.revoke(body)
        except ATHError as exc:
            return error_response(exc)
        # RFC 7009 §2.2: 200 whether or not the token existed.
        return JSONResponse({}, headers=NO_STORE)

    # --- the service's own users (ATH §4.7: users revoke through the implementer) ----------

    async def _user(self, request: Request) -> str:
        if self.user_authenticator is None:
            raise ATHError(ErrorCode.INVALID_CLIENT, "user revocation is not enabled")
        user_id = await authenticate_user(self.user_authenticator, request)
        if user_id is None:
            raise ATHError(
                ErrorCode.INVALID_CLIENT,
                "log in to the service first",
                details={"reason": "user_not_authenticated"},
            )
        return user_id

    async def user_grants(self, request: Request) -> Response:
        try:
            user_id = await self._user(request)
        except ATHError as exc:
            return await reject(self.engine, exc)
        grants = await self.engine.list_user_grants(user_id)
        return JSONResponse(
            {
                "grants": [
                    {
                        "client_id": g.client_id,
                        "agent_id": g.agent_id,
                        "agent_name": g.agent_name,
                        "provider_id": g.provider_id,
                        "scopes": list(g.scopes),
                        "since": to_iso(g.since),
                        "active_tokens": g.active_tokens,
                    }
                    for g in grants
                ]
            },
            headers=NO_STORE,
        )

    async def user_revoke(self, request: Request) -> Response:
        try:
            user_id = await self._user(request)
            # CSRF: JSON only (a cross-site form cannot send it) and, if sent, our own Origin.
            origin = request.headers.get("origin")
            if origin is not None and origin.rstrip("/") != origin_of(self.engine.base_url):
                raise ATHError(
                    ErrorCode.INVALID_REQUEST,
                    "cross-origin request refused",
                    details={"reason": "cross_origin"},
                    status=403,
                )
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type != "application/json":
                raise ATHError(
                    ErrorCode.INVALID_REQUEST,
                    "Content-Type must be application/json",
                    details={"reason": "unsupported_media_type"},
                    status=415,
                )
            from athkit.server._admin import UserRevokeRequest

            body = await parse_model(request, UserRevokeRequest, self.limit)
            if body.client_id is None and body.token_id is None:
                raise invalid_request("give client_id or token_id", field="client_id")
        except ATHError as exc:
            return await reject(self.engine, exc)
        try:
            count = await self.engine.revoke_for_user(
                user_id, client_id=body.client_id, token_id=body.token_id
            )
        except ATHError as exc:
            return error_response(exc)
        return JSONResponse({"revoked": count}, headers=NO_STORE)


def create_ath_routes(
    engine: ATHEngine,
    *,
    user_authenticator: UserAuthenticator | None = None,
    admin: bool = True,
    discovery: bool = True,
    openapi: bool = True,
) -> list[BaseRoute]:
    """Routes for every native-mode endpoint of ATH §8, plus (optionally) ``/ath/openapi.json``,
    the admin API (``/ath/admin/...``, needs ``settings.admin_token``) and the user routes
    (``/ath/user/...``, need ``user_authenticator``)."""
    h = _Handlers(engine, user_authenticator)
    routes: list[BaseRoute] = [
        Route(REGISTER_PATH, fail_closed(h.register), methods=["POST"]),
        Route(AGENTS_PATH + "{client_id}", fail_closed(h.agent_status), methods=["GET"]),
        Route(AUTHORIZE_PATH, fail_closed(h.authorize), methods=["POST"]),
        Route(CONSENT_PATH + "{session_id}", fail_closed(h.consent), methods=["GET"]),
        Route(CALLBACK_PATH, fail_closed(h.callback), methods=["GET"]),
        Route(TOKEN_PATH, fail_closed(h.token), methods=["POST"]),
        Route(REVOKE_PATH, fail_closed(h.revoke), methods=["POST"]),
    ]
    if discovery:
        routes.append(Route(APP_DISCOVERY_PATH, fail_closed(h.discovery), methods=["GET"]))
    if user_authenticator is not None:
        routes.append(Route(USER_GRANTS_PATH, fail_closed(h.user_grants), methods=["GET"]))
        routes.append(Route(USER_REVOKE_PATH, fail_closed(h.user_revoke), methods=["POST"]))
    if admin and engine.settings.admin_token is not None:
        from athkit.server._admin import create_admin_routes

        routes.extend(create_admin_routes(engine))
    if openapi:
        from athkit.server._openapi import openapi_document

        document: dict[str, Any] = openapi_document(
            engine.settings, include_admin=admin, include_user=user_authenticator is not None
        )

        async def openapi_endpoint(_request: Request) -> Response:
            return JSONResponse(document)

        routes.append(Route(OPENAPI_PATH, openapi_endpoint, methods=["GET"]))
    return routes


def route_paths(routes: Sequence[BaseRoute]) -> list[str]:
    """The paths of ``routes`` (for documentation and tests)."""
    return [getattr(r, "path", "") for r in routes]
