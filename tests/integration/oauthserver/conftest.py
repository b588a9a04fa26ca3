"""A real OAuth server on a 127.0.0.1 port, with one user, two clients and a movable clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from athkit.oauthserver import (
    ClientConfig,
    OAuthServerConfig,
    UserConfig,
    create_oauth_app,
    hash_password,
)
from athkit.protocol import (
    PrivateKey,
    code_challenge_s256,
    generate_code_verifier,
    generate_private_key,
    public_key_to_jwk,
)
from athkit.testing import drive_consent, free_port, serve_in_thread

PASSWORD = "correct horse battery"
SECRET = "shop-client-secret-0123456789"
RS_SECRET = "resource-server-secret-0123456789"
SCOPES = {
    "orders:read": "See your orders",
    "orders:write": "Place orders for you",
    "profile": "Read your name and email",
}
ALICE_HASH = hash_password(PASSWORD)
CONTEXT_KEY = generate_private_key()


class Clock:
    """Real time plus an offset the test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class OAuthEnv:
    """A running server and what a test needs to talk to it."""

    url: str
    config: OAuthServerConfig
    clock: Clock
    client_id: str = "shop"
    secret: str = SECRET
    redirect_uri: str = "http://127.0.0.1:1/callback"
    context_key: PrivateKey = CONTEXT_KEY
    verifier: str = field(default_factory=generate_code_verifier)

    @property
    def challenge(self) -> str:
        return code_challenge_s256(self.verifier)

    def authorize_url(self, **overrides: Any) -> str:
        params: dict[str, Any] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "orders:read orders:write profile",
            "state": "state-123",
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return (
            f"{self.url}/authorize?{urlencode({k: v for k, v in params.items() if v is not None})}"
        )

    def consent(self, http: httpx.Client, url: str | None = None, **kwargs: Any) -> dict[str, str]:
        """Log in as alice and answer the consent page; return the redirect's query."""
        kwargs.setdefault("username", "alice")
        kwargs.setdefault("password", PASSWORD)
        result = drive_consent(
            http, url or self.authorize_url(), stop_at=self.redirect_uri, **kwargs
        )
        assert isinstance(result, str), f"no redirect back: {result.status_code} {result.text}"
        return {k: v[0] for k, v in parse_qs(urlsplit(result).query).items()}

    def exchange(self, http: httpx.Client, code: str, **overrides: Any) -> httpx.Response:
        data: dict[str, Any] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.verifier,
        }
        data.update(overrides)
        return http.post(
            f"{self.url}/token",
            data={k: v for k, v in data.items() if v is not None},
            auth=(self.client_id, self.secret),
        )

    def tokens(self, http: httpx.Client, **consent: Any) -> dict[str, Any]:
        """The whole flow: consent, then exchange the code; the token response."""
        code = self.consent(http, **consent)["code"]
        response = self.exchange(http, code)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def make_config(port: int, **overrides: Any) -> OAuthServerConfig:
    """The test server's configuration."""
    values: dict[str, Any] = {
        "issuer": f"http://127.0.0.1:{port}",
        "database_url": "sqlite:///:memory:",
        "secret_key": "k" * 40,
        "scopes": SCOPES,
        "users": [
            UserConfig(
                username="alice",
                password_hash=ALICE_HASH,
                sub="user-alice-1",
                name="Alice Example",
                email="alice@example.com",
            )
        ],
        "clients": [
            ClientConfig(
                client_id="shop",
                name="ATH Shop",
                client_secret=SECRET,
                redirect_uris=["http://127.0.0.1:1/callback", "http://127.0.0.1:1/other"],
                scopes=list(SCOPES),
                ath_context_key=public_key_to_jwk(CONTEXT_KEY),
            ),
            ClientConfig(
                client_id="orders-api",
                name="Orders API",
                client_secret=RS_SECRET,
                redirect_uris=["http://127.0.0.1:1/unused"],
                scopes=["profile"],
                introspection=True,
            ),
        ],
    }
    values.update(overrides)
    return OAuthServerConfig(**values)


@pytest.fixture
def oauth() -> Iterator[OAuthEnv]:
    """A fresh server (in-memory SQLite) for one test."""
    port = free_port()
    config = make_config(port)
    clock = Clock()
    with serve_in_thread(create_oauth_app(config, clock=clock), port=port) as server:
        yield OAuthEnv(url=server.url, config=config, clock=clock)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A client with its own cookie jar, as one browser would have."""
    with httpx.Client(timeout=10) as client:
        yield client
