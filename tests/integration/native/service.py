"""A small native ATH service for the integration tests, the durability test (run as its own
process: ``python -m tests.integration.native.service CONFIG.json``) and the benchmark."""

from __future__ import annotations

import json
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from athkit.protocol import ScopeRouteMap
from athkit.server import (
    Clock,
    EngineStores,
    ProviderSettings,
    RateLimitSettings,
    ServerSettings,
    create_native_app,
    require_scopes,
)

SERVICE_SCOPES = ["orders:read", "orders:write", "profile", "payments", "admin"]
OAUTH_CLIENT_ID = "native-shop"
OAUTH_CLIENT_SECRET = "native-shop-oauth-secret-0123456789"
ADMIN_TOKEN = "admin-token-for-tests-0123456789abcdef"
USER_COOKIE = "test_shop_user"


class OffsetClock:
    """Real time plus an offset a test can move forward (shared by every server in a test)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def __call__(self) -> float:
        return self.now()

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class ServiceConfig:
    base_url: str
    oauth_url: str
    database_url: str
    consent_key_pem: str
    secret_key: str = "service-secret-key-for-tests-0123456789abcdef"
    # /ath/check for a proxy in front of the API (forward-auth)
    forward_auth_secret: str = "native-forward-auth-secret-0123456789abcdef"
    rate_limit_requests: int = 600  # per agent and minute (benchmarks raise it)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def service_settings(config: ServiceConfig) -> ServerSettings:
    """The native service's configuration: one provider (its own OAuth server)."""
    return ServerSettings(
        base_url=config.base_url,
        app_id="test-shop",
        name="Test Shop",
        database_url=config.database_url,
        secret_key=config.secret_key,
        admin_token=ADMIN_TOKEN,
        forward_auth_secret=config.forward_auth_secret,
        allow_http=True,  # development: agents and their documents live on 127.0.0.1
        allow_loopback=True,
        consent_signing_key=config.consent_key_pem,
        rate_limit=RateLimitSettings(requests=config.rate_limit_requests),
        providers=[
            ProviderSettings(
                provider_id="shop",
                display_name="Test Shop",
                authorization_endpoint=f"{config.oauth_url}/authorize",
                token_endpoint=f"{config.oauth_url}/token",
                userinfo_endpoint=f"{config.oauth_url}/userinfo",
                issuer=config.oauth_url,
                client_id=OAUTH_CLIENT_ID,
                client_secret=OAUTH_CLIENT_SECRET,
                scopes=SERVICE_SCOPES,
                auto_approve=["orders:read", "orders:write", "profile"],
                review=["payments"],
                never=["admin"],
            )
        ],
    )


def build_service(
    config: ServiceConfig, *, clock: Clock | None = None, stores: EngineStores | None = None
) -> Starlette:
    """The app: ATH endpoints, ``GET /api/orders`` behind ``require_scopes`` and ``/api/m/...``
    behind a scope → route map; the service's own "login" for user revocation."""
    logins: dict[str, str] = {}

    @require_scopes("orders:read")
    async def orders(request: Request) -> Response:
        ath = request.state.ath
        return JSONResponse({"user": ath.user_id, "agent": ath.agent_id, "orders": []})

    need_profile = require_scopes("profile")

    async def profile(request: Request) -> Response:
        # The dependency form (FastAPI's Depends works the same way).
        caller = await need_profile(request)
        return JSONResponse({"user": caller.user_id, "scopes": list(caller.scopes)})

    async def m_orders(request: Request) -> Response:
        ath = request.state.ath
        return JSONResponse({"method": request.method, "user": ath.user_id})

    async def login(request: Request) -> Response:
        # Stand-in for the service's own login: a session cookie naming the user.
        form = await request.form()
        session = secrets.token_urlsafe(16)
        logins[session] = str(form["sub"])
        response = JSONResponse({"ok": True})
        response.set_cookie(USER_COOKIE, session, httponly=True, samesite="lax")
        return response

    def current_user(request: Request) -> str | None:
        return logins.get(request.cookies.get(USER_COOKIE, ""))

    return create_native_app(
        service_settings(config),
        stores=stores,
        clock=clock,
        routes=[
            Route("/api/orders", orders, methods=["GET"]),
            Route("/api/profile", profile, methods=["GET"]),
            Route("/api/m/orders", m_orders, methods=["GET", "POST"]),
            Route("/test-login", login, methods=["POST"]),
        ],
        scope_map=ScopeRouteMap.from_config(
            {"orders:read": ["GET /api/m/orders"], "orders:write": ["POST /api/m/orders"]}
        ),
        api_prefix="/api/m",
        user_authenticator=current_user,
    )


def main(argv: list[str]) -> None:
    """Serve the service on the port of its base URL until killed."""
    import uvicorn

    data: dict[str, Any] = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    config = ServiceConfig(**data)
    port = int(config.base_url.rsplit(":", 1)[1])
    uvicorn.run(build_service(config), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv)
