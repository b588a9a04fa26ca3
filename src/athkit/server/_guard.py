"""Protecting a native service's own API with ATH tokens.

``require_scopes(...)`` works both as a decorator of Starlette endpoints and as a FastAPI-style
dependency (``Depends(require_scopes("orders:read"))``); ``ATHScopeMiddleware`` guards a whole
path prefix with a :class:`~athkit.protocol.ScopeRouteMap` (a request no rule allows is refused
with 403 ``SCOPE_NOT_APPROVED``).

Each check is the one access check of ATH §4.6 (``_access.py``), the same as the gateway
proxy's: ``Authorization: Bearer <ath token>`` valid (not unknown, revoked or expired), the
``X-ATH-Agent-ID`` header equal to the token's agent, the token's provider the service's own, the
token's scopes covering what the route needs, and the agent within its rate limit.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeAlias, overload

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from athkit.protocol import AGENT_ID_HEADER, ATHError, ScopeRouteMap
from athkit.server._access import AccessCheck, bearer_token
from athkit.server._engine import ATHEngine
from athkit.server._records import TokenInfo
from athkit.server._web import error_response

ENGINE_STATE_KEY = "ath_engine"
ACCESS_STATE_KEY = "ath_access"
_AGENT_ID = AGENT_ID_HEADER.lower()  # also for plain dicts of lower-case names


ATHPrincipal: TypeAlias = TokenInfo
"""Who is calling: the agent (``agent_id``, ``client_id``), the user it acts for
(``user_id``), the provider and the token's effective ``scopes`` — the checked token itself."""


def access_check_for(app_state: Any, engine: ATHEngine) -> AccessCheck:
    """The app's :class:`AccessCheck` (``app.state.ath_access``, with the app's rate limit), or
    a check without a rate limit for an engine used on its own."""
    access = getattr(app_state, ACCESS_STATE_KEY, None)
    if isinstance(access, AccessCheck) and access.engine is engine:
        return access
    return AccessCheck(engine)


async def authenticate(engine: ATHEngine, headers: Any, *, provider_id: str | None) -> ATHPrincipal:
    """Validate the request's ATH token and ``X-ATH-Agent-ID`` (ATH §4.6 steps 1–3)."""
    granted = await AccessCheck(engine).check(
        method="",
        path="",
        token=bearer_token(headers.get("authorization")),
        agent_id=headers.get(_AGENT_ID),
        provider_id=provider_id,
    )
    return granted.token


class require_scopes:
    """Demand a valid ATH token holding every one of ``scopes``.

    As a decorator of a Starlette endpoint, the principal lands in ``request.state.ath``; as a
    dependency, ``await guard(request)`` returns it. The engine is ``engine`` or, when omitted,
    ``request.app.state.ath_engine`` (set by :func:`create_native_app`). ``provider_id`` defaults
    to the engine's only provider.
    """

    def __init__(
        self, *scopes: str, engine: ATHEngine | None = None, provider_id: str | None = None
    ) -> None:
        self.scopes = list(scopes)
        self.engine = engine
        self.provider_id = provider_id

    def _engine(self, request: Request) -> ATHEngine:
        if self.engine is not None:
            return self.engine
        engine = getattr(request.app.state, ENGINE_STATE_KEY, None)
        if not isinstance(engine, ATHEngine):
            raise RuntimeError("require_scopes needs engine=... or app.state.ath_engine")
        return engine

    async def check(self, request: Request) -> ATHPrincipal:
        """Validate ``request``; raise :class:`ATHError` on failure."""
        engine = self._engine(request)
        granted = await access_check_for(request.app.state, engine).check(
            method=request.method,
            path=request.url.path,
            token=bearer_token(request.headers.get("authorization")),
            agent_id=request.headers.get(_AGENT_ID),
            provider_id=self.provider_id or engine.settings.only_provider_id,
            required=self.scopes,
        )
        principal = granted.token
        request.state.ath = principal
        return principal

    @overload
    def __call__(self, request: Request) -> Awaitable[ATHPrincipal]: ...

    @overload
    def __call__(
        self, request: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]: ...

    def __call__(self, request: Any) -> Any:
        """``await guard(request)`` (dependency) or ``@guard`` (decorator)."""
        if isinstance(request, Request):
            return self.check(request)
        endpoint: Callable[[Request], Awaitable[Response]] = request

        @functools.wraps(endpoint)
        async def guarded(req: Request) -> Response:
            try:
                await self.check(req)
            except ATHError as exc:
                return error_response(exc)
            return await endpoint(req)

        return guarded


class ATHScopeMiddleware:
    """Guard every request under ``prefix`` with an ATH token and a scope → route map.

    Paths in ``route_map`` are full request paths (e.g. ``GET /api/orders``). A request that no
    scope of its token allows is refused with 403 ``SCOPE_NOT_APPROVED`` and audited as
    ``scope_violation``. The principal lands in ``request.state.ath``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        route_map: ScopeRouteMap,
        engine: ATHEngine,
        prefix: str = "/api",
        provider_id: str | None = None,
        exempt: Iterable[str] = (),
        access: AccessCheck | None = None,
    ) -> None:
        self.app = app
        self.access = access or AccessCheck(engine)
        self.route_map = route_map
        self.engine = engine
        self.prefix = prefix.rstrip("/")
        self.provider_id = provider_id or engine.settings.only_provider_id
        self.exempt = frozenset(exempt)

    def _guarded(self, path: str) -> bool:
        if path in self.exempt:
            return False
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        try:
            granted = await self.access.check(
                method=request.method,
                path=path.split("?", 1)[0],
                token=bearer_token(request.headers.get("authorization")),
                agent_id=request.headers.get(_AGENT_ID),
                provider_id=self.provider_id,
                route_map=self.route_map,
            )
        except ATHError as exc:
            await error_response(exc)(scope, receive, send)
            return
        principal = granted.token
        scope.setdefault("state", {})["ath"] = principal
        await self.app(scope, receive, send)
