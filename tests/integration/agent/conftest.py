"""A native ATH service on 127.0.0.1 for the agent SDK and CLI to talk to, for real.

The service is ``athkit.server.create_native_app`` with real attestation verification (loopback
and plain http allowed, as a development setup must), in front of our OAuth server as its
provider, plus a tiny protected API under ``/api``. Every request stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from athkit.oauthserver import (
    ClientConfig,
    OAuthServerConfig,
    UserConfig,
    create_oauth_app,
    drive_consent,
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
from athkit.testing import free_port, serve_in_thread

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


@dataclass
class NativeStack:
    """A running native service and its OAuth server."""

    url: str
    oauth_url: str
    app_id: str = APP_ID

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
        serve_in_thread(app, port=service_port),
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
