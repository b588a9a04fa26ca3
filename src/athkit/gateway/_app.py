"""``create_gateway_app``: the engine's ATH endpoints plus the proxy, catalog, health and metrics.

Requests under ``/ath/proxy/`` go straight to the proxy (a raw ASGI app: it is the hot path);
everything else goes to a Starlette app holding the catalog, ``/healthz``, ``/readyz``,
``/metrics`` and the engine's own routes (ATH §8 and the admin API).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Unpack

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from athkit.console import Console, Throttle
from athkit.gateway._auditqueue import AuditQueue
from athkit.gateway._catalog import catalog
from athkit.gateway._check import CHECK_PREFIX, CheckApp
from athkit.gateway._mcp import McpGate
from athkit.gateway._metrics import GatewayMetrics
from athkit.gateway._proxy import ProxyApp
from athkit.gateway._schema import GatewayConfig
from athkit.gateway._settings import GatewaySettings, resolve_settings
from athkit.gateway._upstream import Upstream
from athkit.protocol import (
    ADMIN_PREFIX,
    AGENTS_PATH,
    AUTHORIZE_PATH,
    CALLBACK_PATH,
    CONSENT_PATH,
    GATEWAY_DISCOVERY_PATH,
    PROXY_PREFIX,
    REGISTER_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
)
from athkit.server import (
    ATHEngine,
    RefuseNul,
    ath_error_handler,
    build_engine,
    create_ath_routes,
    unexpected_error_handler,
)
from athkit.server._assembly import EngineParts

_log = logging.getLogger("athkit.gateway")

_ENDPOINTS = (
    (GATEWAY_DISCOVERY_PATH, GATEWAY_DISCOVERY_PATH),
    ("/healthz", "/healthz"),
    ("/readyz", "/readyz"),
    ("/metrics", "/metrics"),
    (REGISTER_PATH, REGISTER_PATH),
    (AGENTS_PATH, AGENTS_PATH + "{client_id}"),
    (AUTHORIZE_PATH, AUTHORIZE_PATH),
    (CONSENT_PATH, CONSENT_PATH + "{session_id}"),
    (CALLBACK_PATH, CALLBACK_PATH),
    (TOKEN_PATH, TOKEN_PATH),
    (REVOKE_PATH, REVOKE_PATH),
    (ADMIN_PREFIX + "/", ADMIN_PREFIX),
    ("/admin", "/admin"),
    ("/admin/", "/admin"),
    ("/account", "/account"),
    ("/account/", "/account"),
)


def endpoint_label(path: str) -> str:
    """The metrics label of a path: its route template, or ``other`` (bounded cardinality)."""
    for prefix, label in _ENDPOINTS:
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return label
    return "other"


@dataclass(eq=False)
class GatewayApp:
    """The gateway as one ASGI app; ``engine``, ``settings``, ``metrics`` and ``console`` (the
    operator and user pages, ``None`` when switched off) are public."""

    settings: GatewaySettings
    engine: ATHEngine
    proxy: ProxyApp
    web: Starlette
    metrics: GatewayMetrics
    check: CheckApp | None = None
    console: Console | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(PROXY_PREFIX):
                await self.proxy(scope, receive, send)
                return
            if self.check is not None and (
                path == CHECK_PREFIX or path.startswith(CHECK_PREFIX + "/")
            ):
                await self.check(scope, receive, send)
                return
            await self._counted(scope, receive, send)
            return
        await self.web(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500

        async def send_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.web(scope, receive, send_status)
        finally:
            self.metrics.request_done(endpoint_label(scope["path"]), status)


def create_gateway_app(
    config: GatewayConfig | GatewaySettings,
    **parts: Unpack[EngineParts],
) -> GatewayApp:
    """Build the gateway from a validated configuration (or already-resolved settings).

    The stores follow ``database_url`` (SQLite or PostgreSQL, migrated at start-up; ``memory://``
    for tests); the attestation verifier follows the ``[verifier]`` fetch policy, with its jti
    replay records in the database, or in Redis when ``redis_url`` is set. ``parts``
    (``stores``, ``verifier``, ``limiter``, ``clock``, ``oauth``) replace those defaults (for
    embedding and tests).
    """
    settings = config if isinstance(config, GatewaySettings) else resolve_settings(config)
    built = build_engine(settings, **parts)
    engine, db = built.engine, built.database
    closers: list[Callable[[], Awaitable[object]]] = []
    metrics = GatewayMetrics(p.provider_id for p in settings.providers)
    upstreams = {
        p.provider_id: Upstream(
            provider_id=p.provider_id,
            api_base=p.api_base,
            routes=p.route_map(),
            connect_timeout=p.connect_timeout,
            timeout=p.timeout,
            max_connections=p.max_connections,
            mcp=McpGate.from_config(p.mcp) if p.mcp is not None else None,
        )
        for p in settings.providers
    }
    audit = AuditQueue(engine, maxsize=settings.proxy.audit_max_pending)
    proxy = ProxyApp(engine, upstreams, built.access, metrics, audit)
    discovery = catalog(settings).dump()

    async def well_known(_: Request) -> Response:
        return JSONResponse(discovery, headers={"cache-control": "public, max-age=300"})

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks = await built.readiness()
        checks["audit"] = "failing" if audit.failing else "ok"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    async def metrics_endpoint(_: Request) -> Response:
        async def count() -> int:
            # One COUNT in the database, bounded in time: never the token rows themselves.
            async with asyncio.timeout(settings.database_timeout):
                return await engine.stores.tokens.count_active(engine.clock.now())

        try:
            body = await metrics.render(count)
        except Exception:
            _log.exception("metrics: the token store failed")
            return JSONResponse(
                {"code": "INTERNAL_ERROR", "message": "the token store is unavailable"},
                status_code=503,
            )
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    console: Console | None = None
    if settings.console.enabled:
        console = Console(
            engine,
            db=db,
            # Stores handed in (tests, embedding) or memory://: operators live in memory too.
            database_url=None if db is not None else "sqlite:///:memory:",
            path="/admin",
            user_path="/account" if settings.console.user_pages else None,
            session_lifetime=int(settings.console.session_hours * 3600),
            throttle=Throttle(
                max_failures=settings.console.max_failed_sign_ins,
                window=settings.console.throttle_minutes * 60,
            ),
        )
        closers.append(console.aclose)
    routes: list[BaseRoute] = [
        Route(GATEWAY_DISCOVERY_PATH, well_known, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        # ATH §8 (register, status, authorize, consent, callback, token, revoke) and, with an
        # admin token, the admin API: the engine's own routes, mounted as they are.
        *create_ath_routes(engine, admin=True, discovery=False, openapi=False),
        # The console: operators at /admin, users' Connected agents at /account.
        *(console.routes() if console is not None else []),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if settings.mode == "development":
            _log.warning("ATH gateway running in DEVELOPMENT mode: not for production use")
        await built.start()
        if console is not None:
            await console.migrate()
        for upstream in upstreams.values():
            await upstream.start()
        audit.start()
        try:
            yield
        finally:
            await audit.close()
            for upstream in upstreams.values():
                await upstream.close()
            for close in closers:
                with contextlib.suppress(Exception):
                    await close()
            await built.aclose()

    web = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(RefuseNul)],
        exception_handlers={
            HTTPException: ath_error_handler,
            Exception: unexpected_error_handler,
        },
    )
    secret = settings.forward_auth_secret
    check = CheckApp(proxy, secret.get_secret_value()) if secret is not None else None
    return GatewayApp(settings, engine, proxy, web, metrics, check, console)
