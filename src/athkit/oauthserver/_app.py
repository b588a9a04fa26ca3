"""The OAuth server as one Starlette application."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from athkit.oauthserver import _authorize, _tokens
from athkit.oauthserver._common import ServerState, json_response
from athkit.oauthserver._config import OAuthServerConfig
from athkit.oauthserver._store import OAuthStore
from athkit.pages import status_page, wants_html
from athkit.storage import create_database, run_migrations

logger = logging.getLogger("athkit.oauthserver")

_BROWSER_PATHS = ("/authorize", "/login", "/consent")
_StateHandler = Callable[[ServerState, Request], Awaitable[Response]]


def create_oauth_app(
    config: OAuthServerConfig, *, clock: Callable[[], float] | None = None
) -> Starlette:
    """The ASGI app of an OAuth 2.0 authorization server for ``config``.

    The database schema is migrated when the app starts (its lifespan). ``clock`` returns the
    current Unix time; tests pass their own to move time forward.
    """
    engine = create_database(config.database_url)
    srv = ServerState(config=config, store=OAuthStore(engine), clock=clock or time.time)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await run_migrations(engine, "athkit.oauthserver:migrations", "oauthserver_alembic_version")
        logger.info("oauth server for %s ready", config.issuer)
        try:
            yield
        finally:
            await engine.dispose()

    def bind(handler: _StateHandler) -> Callable[[Request], Awaitable[Response]]:
        return partial(handler, srv)

    async def metadata_doc(_request: Request) -> Response:
        return json_response(server_metadata(config), 200)

    async def healthz(_request: Request) -> Response:
        await srv.store.ping()
        return json_response({"status": "ok"})

    async def store_failed(request: Request, exc: Exception) -> Response:
        # Fail closed: a database fault refuses the request without saying more.
        logger.error("oauth server: database failure on %s: %s", request.url.path, type(exc))
        if request.url.path in _BROWSER_PATHS:
            return srv.error_page(
                "Temporarily unavailable", "Please try again in a moment.", status=503
            )
        return json_response(
            {"error": "temporarily_unavailable", "error_description": "storage unavailable"},
            503,
        )

    async def home(_request: Request) -> Response:
        return srv.render(
            "home.html",
            title="Sign-in server",
            issuer=config.issuer,
            metadata=srv.url("/.well-known/oauth-authorization-server"),
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        # Unknown pages and wrong methods: a page for a browser, RFC 6749-style JSON otherwise.
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if wants_html(request.headers.get("accept")):
            return status_page(status, site="athkit OAuth", links=[("Home", srv.url("/"))])
        described = {404: "no such endpoint", 405: "method not allowed"}
        return json_response(
            {"error": "invalid_request", "error_description": described.get(status, "refused")},
            status,
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        # A bug: logged with its traceback here, never shown to the client (RFC 6749's
        # server_error), in the same shape as every other answer of this server.
        logger.error("oauth server: unexpected error on %s", request.url.path, exc_info=exc)
        if wants_html(request.headers.get("accept")):
            return status_page(500, site="athkit OAuth", links=[("Home", srv.url("/"))])
        return json_response(
            {"error": "server_error", "error_description": "unexpected error"}, 500
        )

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/authorize", bind(_authorize.authorize), methods=["GET"]),
        Route("/login", bind(_authorize.login_page), methods=["GET"]),
        Route("/login", bind(_authorize.login_submit), methods=["POST"]),
        Route("/consent", bind(_authorize.consent_page), methods=["GET"]),
        Route("/consent", bind(_authorize.consent_submit), methods=["POST"]),
        Route("/token", bind(_tokens.token), methods=["POST"]),
        Route("/revoke", bind(_tokens.revoke), methods=["POST"]),
        Route("/introspect", bind(_tokens.introspect), methods=["POST"]),
        Route("/userinfo", bind(_tokens.userinfo), methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", metadata_doc, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            SQLAlchemyError: store_failed,
            OSError: store_failed,
            HTTPException: http_error,
            Exception: unexpected,
        },
    )


def server_metadata(config: OAuthServerConfig) -> dict[str, object]:
    """The RFC 8414 authorization server metadata document."""
    base = config.issuer
    auth_methods = ["client_secret_basic", "client_secret_post"]
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo",
        "revocation_endpoint": f"{base}/revoke",
        "introspection_endpoint": f"{base}/introspect",
        "scopes_supported": list(config.scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "authorization_response_iss_parameter_supported": True,
    }
