"""``create_native_app``: a Starlette app serving the ATH endpoints of a native service, with the
service's own routes protected by ATH tokens."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Unpack

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from athkit.pages import status_page, wants_html
from athkit.protocol import CHECK_PATH, ATHError, ErrorCode, ScopeRouteMap
from athkit.server._assembly import EngineParts, build_engine
from athkit.server._forward_auth import NativeCheckApp
from athkit.server._guard import ACCESS_STATE_KEY, ENGINE_STATE_KEY, ATHScopeMiddleware
from athkit.server._nul import RefuseNul
from athkit.server._routes import UserAuthenticator, create_ath_routes
from athkit.server._settings import ServerSettings
from athkit.server._web import error_response

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


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback, answered as ATH §7 ``INTERNAL_ERROR`` JSON (or the 500
    page for a browser), never Starlette's plain-text "Internal Server Error"."""
    _log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return await _http_error(request, exc)


def create_native_app(
    settings: ServerSettings,
    *,
    routes: Sequence[BaseRoute] = (),
    scope_map: ScopeRouteMap | None = None,
    api_prefix: str = "/api",
    user_authenticator: UserAuthenticator | None = None,
    audit_logger: logging.Logger | None = None,
    middleware: Sequence[Middleware] = (),
    **parts: Unpack[EngineParts],
) -> Starlette:
    """A native ATH service: the ATH endpoints of ATH §8, ``routes`` of the service itself, and
    — with ``scope_map`` — every request under ``api_prefix`` guarded by an ATH token whose
    scopes allow it.

    The engine and every store come from :func:`build_engine` — the same assembly as the
    gateway's: the database of ``database_url`` (migrated at start-up), the fast SQLite token
    read, Redis for replay records and rate limits when ``redis_url`` is set, the verifier's
    fetch policy. ``parts`` (``stores``, ``verifier``, ``limiter``, ``oauth``, ``clock``)
    replace those defaults. The engine is ``app.state.ath_engine`` and the access check (with
    the rate limit) ``app.state.ath_access``, so ``require_scopes`` finds both. With
    ``settings.forward_auth_secret``, ``/ath/check`` answers a proxy that forwards the API
    itself (:class:`NativeCheckApp`, deciding by ``scope_map``).
    """
    built = build_engine(settings, audit_logger=audit_logger, **parts)
    engine = built.engine

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await built.start()  # migrations under a database lock, or a schema check
        try:
            yield
        finally:
            await built.aclose()

    stack: list[Middleware] = [Middleware(RefuseNul), *middleware]
    if scope_map is not None:
        stack.append(
            Middleware(
                ATHScopeMiddleware,
                route_map=scope_map,
                engine=engine,
                prefix=api_prefix,
                access=built.access,
            )
        )
    exception_handlers: dict[Any, Any] = {
        HTTPException: _http_error,
        ATHError: ath_error_handler,
        Exception: unexpected_error_handler,
    }
    all_routes = [*create_ath_routes(engine, user_authenticator=user_authenticator), *routes]
    if settings.forward_auth_secret is not None:
        # Forward-auth: a proxy in front of the API asks /ath/check about each call.
        if scope_map is None:
            raise ValueError("forward_auth_secret needs scope_map: /ath/check decides by it")
        check = NativeCheckApp(
            built.access,
            settings.forward_auth_secret.get_secret_value(),
            scope_map,
            provider_id=settings.only_provider_id,
        )
        all_routes[:0] = [Route(CHECK_PATH, check), Route(CHECK_PATH + "/{path:path}", check)]
    app = Starlette(
        routes=all_routes,
        middleware=stack,
        lifespan=lifespan,
        exception_handlers=exception_handlers,
    )
    setattr(app.state, ENGINE_STATE_KEY, engine)
    setattr(app.state, ACCESS_STATE_KEY, built.access)
    # The engine's database (None with stores handed in): the console mounts onto it.
    app.state.ath_database = built.database
    return app
