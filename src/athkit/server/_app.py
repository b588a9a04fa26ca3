"""``create_native_app``: a Starlette app serving the ATH endpoints of a native service, with the
service's own routes protected by ATH tokens."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from athkit.pages import status_page, wants_html
from athkit.protocol import ATHError, ErrorCode, ScopeRouteMap
from athkit.server._access import AccessCheck
from athkit.server._clock import Clock, SystemClock
from athkit.server._engine import ATHEngine
from athkit.server._fetch import FetchPolicy
from athkit.server._forward_auth import CHECK_PATH, NativeCheckApp
from athkit.server._guard import ENGINE_STATE_KEY, ATHScopeMiddleware
from athkit.server._oauth import HttpOAuthBridge, OAuthBridge
from athkit.server._ports import AgentVerifier
from athkit.server._replay import MemoryReplayStore, ReplayStore, SqlReplayStore
from athkit.server._routes import UserAuthenticator, create_ath_routes
from athkit.server._schema import check_server_schema, migrate_server_schema
from athkit.server._settings import ServerSettings
from athkit.server._sql import sql_stores
from athkit.server._stores import EngineStores
from athkit.server._verifier import AttestationVerifier
from athkit.server._web import error_response
from athkit.storage import create_engine

_log = logging.getLogger("athkit.server")


async def _http_error(request: Request, exc: Exception) -> Response:
    # Unknown paths and wrong methods: a page for a browser, ATH §7 JSON for everyone else
    # (never Starlette's plain text).
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if wants_html(request.headers.get("accept")):
        return status_page(status)
    message = {404: "no such endpoint", 405: "method not allowed"}.get(status, "request refused")
    code = ErrorCode.INVALID_REQUEST if status < 500 else ErrorCode.INTERNAL_ERROR
    return error_response(ATHError(code, message, status=status))


async def ath_error_handler(_request: Request, exc: Exception) -> Response:
    """Render an :class:`ATHError` raised by a handler or a dependency (ATH §7). Install it in
    your own app (``app.add_exception_handler(ATHError, ath_error_handler)``) when you use
    ``require_scopes`` as a dependency there."""
    if not isinstance(exc, ATHError):
        return await _http_error(_request, exc)
    return error_response(exc)


def create_native_app(
    settings: ServerSettings,
    *,
    verifier: AgentVerifier | None = None,
    stores: EngineStores | None = None,
    oauth: OAuthBridge | None = None,
    clock: Clock | None = None,
    routes: Sequence[BaseRoute] = (),
    scope_map: ScopeRouteMap | None = None,
    api_prefix: str = "/api",
    user_authenticator: UserAuthenticator | None = None,
    audit_logger: logging.Logger | None = None,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """A native ATH service: the ATH endpoints of ATH §8, ``routes`` of the service itself, and
    — with ``scope_map`` — every request under ``api_prefix`` guarded by an ATH token whose
    scopes allow it.

    Without ``stores``, the SQL stores on ``settings.database_url`` are used and migrated when
    the app starts. Without ``verifier``, an :class:`AttestationVerifier` is built from the
    settings' fetch policy, with its jti replay store in the same database (or in memory when
    ``stores`` are given). The engine is ``app.state.ath_engine`` (so ``require_scopes`` finds
    it). With ``settings.forward_auth_secret``, ``/ath/check`` answers a proxy that forwards the
    API itself (:class:`NativeCheckApp`, deciding by ``scope_map``).
    """
    db = None
    if stores is None:
        db = create_engine(settings.database_url, **settings.database_options())
        stores = sql_stores(db)
    time_source = clock or SystemClock()
    own_verifier: AttestationVerifier | None = None
    if verifier is None:
        replay: ReplayStore = (
            SqlReplayStore(db, clock=time_source.now, timeout=settings.database_timeout)
            if db is not None
            else MemoryReplayStore(clock=time_source.now)
        )
        own_verifier = AttestationVerifier(
            replay_store=replay,
            fetcher=FetchPolicy(
                allow_http=settings.allow_http,
                allow_loopback=settings.allow_loopback,
                allow_private=settings.allow_private_networks,
            ),
            clock=time_source.now,
        )
        verifier = own_verifier
    bridge = oauth or HttpOAuthBridge()
    engine = ATHEngine(
        settings,
        stores=stores,
        verifier=verifier,
        oauth=bridge,
        clock=time_source,
        audit_logger=audit_logger,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if db is not None and settings.migrate_on_start:
            await migrate_server_schema(db)  # Alembic, under a database lock (replicas)
        elif db is not None:
            await check_server_schema(db)  # migrated by `ath native migrate`: check only
        try:
            yield
        finally:
            if own_verifier is not None:
                await own_verifier.aclose()
            if oauth is None:
                await bridge.aclose()  # type: ignore[attr-defined]
            if db is not None:
                await db.dispose()

    stack: list[Middleware] = list(middleware)
    if scope_map is not None:
        stack.append(
            Middleware(ATHScopeMiddleware, route_map=scope_map, engine=engine, prefix=api_prefix)
        )
    exception_handlers: dict[Any, Any] = {HTTPException: _http_error, ATHError: ath_error_handler}
    all_routes = [*create_ath_routes(engine, user_authenticator=user_authenticator), *routes]
    if settings.forward_auth_secret is not None:
        # Forward-auth: a proxy in front of the API asks /ath/check about each call.
        if scope_map is None:
            raise ValueError("forward_auth_secret needs scope_map: /ath/check decides by it")
        check = NativeCheckApp(
            AccessCheck(engine),
            settings.forward_auth_secret.get_secret_value(),
            scope_map,
            provider_id=_single_provider(settings),
        )
        all_routes[:0] = [Route(CHECK_PATH, check), Route(CHECK_PATH + "/{path:path}", check)]
    app = Starlette(
        routes=all_routes,
        middleware=stack,
        lifespan=lifespan,
        exception_handlers=exception_handlers,
    )
    setattr(app.state, ENGINE_STATE_KEY, engine)
    return app


def _single_provider(settings: ServerSettings) -> str | None:
    return settings.providers[0].provider_id if len(settings.providers) == 1 else None
