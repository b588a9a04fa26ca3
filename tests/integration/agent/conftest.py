"""A native ATH service on 127.0.0.1 for the agent SDK and CLI to talk to, for real.

The service is ``athkit.server.create_native_app`` with real attestation verification (loopback
and plain http allowed, as a development setup must), in front of our OAuth server as its
provider, plus a tiny protected API under ``/api``. Every request stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from athkit.oauthserver import (
    ClientConfig,
    OAuthServerConfig,
    UserConfig,
    create_oauth_app,
    hash_password,
)
from athkit.protocol import (
    ScopeRouteMap,
    generate_private_key,
    private_key_to_pem,
    public_key_to_jwk,
)
from athkit.server import (
    AttestationVerifier,
    FetchPolicy,
    MemoryReplayStore,
    ProviderSettings,
    ServerSettings,
    create_native_app,
    memory_stores,
)
from athkit.testing import drive_consent, free_port, serve_in_thread

USER = "alice"
PASSWORD = "correct horse battery staple"
APP_ID = "shop"
SCOPES = {
    "products:read": "See the catalogue",
    "cart:write": "Change your cart",
    "orders:write": "Place orders for you",
}
PRODUCTS = [{"id": "p1", "name": "Teapot"}, {"id": "p2", "name": "Kettle"}]
DEVELOPER = {"name": "Acme Agents", "id": "acme"}
_PROVIDER_SECRET = "shop-provider-secret-0123456789"
_PASSWORD_HASH = hash_password(PASSWORD)


class _Consenting:
    def opener(
        self, *, scopes: list[str] | None = None, allow: bool = True
    ) -> Callable[[str], bool]:
        """A stand-in browser for ``authorize_interactive``: completes the real consent forms."""

        def open_url(url: str) -> bool:
            with httpx.Client(timeout=20) as http:
                result = drive_consent(
                    http, url, username=USER, password=PASSWORD, scopes=scopes, allow=allow
                )
            assert not isinstance(result, str)
            assert result.status_code == 200, result.text  # the listener's page
            return True

        return open_url


@dataclass
class NativeStack(_Consenting):
    """A running native service and its OAuth server."""

    url: str
    oauth_url: str
    app_id: str = APP_ID


async def _products(request: Request) -> Response:
    return JSONResponse({"products": PRODUCTS})


async def _cart(request: Request) -> Response:
    return JSONResponse({"cart": await request.json()}, status_code=201)


def _oauth_config(
    port: int, service_url: str, context_key_jwk: dict[str, object]
) -> OAuthServerConfig:
    return OAuthServerConfig(
        issuer=f"http://127.0.0.1:{port}",
        database_url="sqlite:///:memory:",
        secret_key="o" * 40,
        scopes=SCOPES,
        users=[
            UserConfig(username=USER, password_hash=_PASSWORD_HASH, sub="user-alice", name="Alice")
        ],
        clients=[
            ClientConfig(
                client_id="shop-ath",
                name="Test Shop",
                client_secret=_PROVIDER_SECRET,
                redirect_uris=[f"{service_url}/ath/callback"],
                scopes=list(SCOPES),
                ath_context_key=context_key_jwk,
            )
        ],
    )


@pytest.fixture(scope="package")
def native() -> Iterator[NativeStack]:
    """The service and its OAuth server, shared by the package's tests (agents differ per test)."""
    with run_native() as stack:
        yield stack


@contextlib.contextmanager
def run_native(wrap: Callable[[Any], Any] | None = None) -> Iterator[NativeStack]:
    """Start the native service (its ASGI app passed through ``wrap``) and its OAuth server."""
    oauth_port, service_port = free_port(), free_port()
    oauth_url = f"http://127.0.0.1:{oauth_port}"
    service_url = f"http://127.0.0.1:{service_port}"
    consent_key = generate_private_key()
    settings = ServerSettings(
        base_url=service_url,
        app_id=APP_ID,
        name="Test Shop",
        secret_key="s" * 40,
        allow_loopback=True,
        allow_http=True,
        consent_signing_key=private_key_to_pem(consent_key).decode(),
        providers=[
            ProviderSettings(
                provider_id=APP_ID,
                display_name="Test Shop",
                authorization_endpoint=f"{oauth_url}/authorize",
                token_endpoint=f"{oauth_url}/token",
                userinfo_endpoint=f"{oauth_url}/userinfo",
                client_id="shop-ath",
                client_secret=_PROVIDER_SECRET,
                scopes=list(SCOPES),
                auto_approve=["products:read", "cart:write"],
                review=["orders:write"],
            )
        ],
    )
    verifier = AttestationVerifier(
        replay_store=MemoryReplayStore(),
        fetcher=FetchPolicy(allow_http=True, allow_loopback=True),
    )
    app = create_native_app(
        settings,
        verifier=verifier,
        stores=memory_stores(),
        routes=[
            Route("/api/products", _products, methods=["GET"]),
            Route("/api/cart", _cart, methods=["POST"]),
        ],
        scope_map=ScopeRouteMap.from_config(
            {"products:read": ["GET /api/products"], "cart:write": ["POST /api/cart"]}
        ),
    )
    oauth_app = create_oauth_app(
        _oauth_config(oauth_port, service_url, public_key_to_jwk(consent_key))
    )
    with (
        serve_in_thread(oauth_app, port=oauth_port),
        serve_in_thread(wrap(app) if wrap else app, port=service_port),
    ):
        yield NativeStack(url=service_url, oauth_url=oauth_url)


@pytest.fixture
def browser_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a subprocess whose "browser" completes the consent forms.

    ``BROWSER`` names an executable; Python's ``webbrowser`` runs it with the URL and waits, as
    it would a real browser. The config directory is private to the test.
    """
    script = tmp_path / "consent-browser"
    driver = Path(__file__).with_name("_consent_browser.py")
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{driver}" "$1"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = {
        **os.environ,
        "BROWSER": str(script),
        "ATH_TEST_USER": USER,
        "ATH_TEST_PASSWORD": PASSWORD,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    for name in ("ATH_CONFIG_DIR", "ATH_SERVER", "ATH_AGENT_ID", "ATH_KEY", "DISPLAY"):
        env.pop(name, None)
    return env


# --- gateway mode ------------------------------------------------------------------------------

GATEWAY_SCOPES = {
    "mail:read": "Read your mail",
    "mail:send": "Send mail as you",
    "cal:read": "See your calendar",
}
MESSAGES = [{"id": "1", "subject": "hello"}]


@dataclass
class GatewayStack(_Consenting):
    """A running gateway in front of two unchanged providers (mail, cal)."""

    url: str
    oauth_url: str
    upstream_url: str


def _upstream_app(oauth_url: str) -> Starlette:
    """A provider's API that knows nothing of ATH: it checks its own OAuth bearer tokens by
    asking the OAuth server's userinfo endpoint."""

    async def user_of(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        async with httpx.AsyncClient(timeout=10) as http:
            info = await http.get(f"{oauth_url}/userinfo", headers={"Authorization": auth})
        return str(info.json()["sub"]) if info.status_code == 200 else None

    async def messages(request: Request) -> Response:
        user = await user_of(request)
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        if request.method == "POST":
            return JSONResponse({"sent": await request.json(), "by": user}, status_code=201)
        return JSONResponse({"user": user, "messages": MESSAGES})

    async def events(request: Request) -> Response:
        user = await user_of(request)
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"user": user, "events": []})

    return Starlette(
        routes=[
            Route("/mail/messages", messages, methods=["GET", "POST"]),
            Route("/cal/events", events, methods=["GET"]),
        ]
    )


@pytest.fixture(scope="package")
def gateway() -> Iterator[GatewayStack]:
    """The gateway, our OAuth server as both providers' login, and their upstream API."""
    from pydantic import SecretStr

    from athkit.gateway import GatewayProviderSettings, GatewaySettings, create_gateway_app

    oauth_port, gateway_port = free_port(), free_port()
    oauth_url = f"http://127.0.0.1:{oauth_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    consent_key = generate_private_key()
    secrets = {"mail": "mail-gateway-secret-0123456789", "cal": "cal-gateway-secret-0123456789"}
    oauth_config = OAuthServerConfig(
        issuer=oauth_url,
        database_url="sqlite:///:memory:",
        secret_key="o" * 40,
        scopes=GATEWAY_SCOPES,
        users=[
            UserConfig(username=USER, password_hash=_PASSWORD_HASH, sub="user-alice", name="Alice")
        ],
        clients=[
            ClientConfig(
                client_id=f"{pid}-gateway",
                name=f"ATH gateway ({pid})",
                client_secret=secret,
                redirect_uris=[f"{gateway_url}/ath/callback"],
                scopes=[s for s in GATEWAY_SCOPES if s.startswith(pid)],
                ath_context_key=public_key_to_jwk(consent_key),
            )
            for pid, secret in secrets.items()
        ],
    )
    with (
        serve_in_thread(create_oauth_app(oauth_config), port=oauth_port),
        serve_in_thread(_upstream_app(oauth_url)) as upstream,
    ):

        def provider(pid: str, routes: dict[str, list[str]]) -> GatewayProviderSettings:
            return GatewayProviderSettings(
                provider_id=pid,
                display_name=pid.title(),
                authorization_endpoint=f"{oauth_url}/authorize",
                token_endpoint=f"{oauth_url}/token",
                userinfo_endpoint=f"{oauth_url}/userinfo",
                client_id=f"{pid}-gateway",
                client_secret=SecretStr(secrets[pid]),
                scopes=list(routes),
                auto_approve=list(routes),
                api_base=f"{upstream.url}/{pid}",
                routes=routes,
            )

        settings = GatewaySettings(
            base_url=gateway_url,
            secret_key=SecretStr("g" * 40),
            gateway_id="test-gateway",
            allow_loopback=True,
            allow_http=True,
            consent_signing_key=private_key_to_pem(consent_key).decode(),
            providers=[
                provider("mail", {"mail:read": ["GET /messages"], "mail:send": ["POST /messages"]}),
                provider("cal", {"cal:read": ["GET /events"]}),
            ],
        )
        verifier = AttestationVerifier(
            replay_store=MemoryReplayStore(),
            fetcher=FetchPolicy(allow_http=True, allow_loopback=True),
        )
        app = create_gateway_app(settings, stores=memory_stores(), verifier=verifier)
        with serve_in_thread(app, port=gateway_port):
            yield GatewayStack(url=gateway_url, oauth_url=oauth_url, upstream_url=upstream.url)
