"""Introspection, metadata, health, and drive_consent starting at an implementer's URL."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from athkit.protocol import code_challenge_s256, generate_code_verifier
from athkit.testing import drive_consent, drive_consent_async, serve_in_thread
from tests.integration.oauthserver.conftest import PASSWORD, RS_SECRET, SECRET, OAuthEnv


def _introspect(
    oauth: OAuthEnv,
    http: httpx.Client,
    token: str,
    auth: tuple[str, str] = ("orders-api", RS_SECRET),
) -> httpx.Response:
    return http.post(f"{oauth.url}/introspect", data={"token": token}, auth=auth)


def test_introspection(oauth: OAuthEnv, http: httpx.Client) -> None:
    tokens = oauth.tokens(http, scopes=["orders:read", "profile"])
    answer = _introspect(oauth, http, tokens["access_token"])
    assert answer.status_code == 200
    body = answer.json()
    assert body["active"] is True
    assert body["scope"] == "orders:read profile"
    assert body["sub"] == "user-alice-1"
    assert body["client_id"] == "shop"
    assert body["exp"] > body["iat"]
    assert body["token_type"] == "Bearer"
    # A resource server must not take a refresh token for an access token.
    assert _introspect(oauth, http, tokens["refresh_token"]).json() == {"active": False}
    assert _introspect(oauth, http, "unknown").json() == {"active": False}
    http.post(f"{oauth.url}/revoke", data={"token": tokens["access_token"]}, auth=("shop", SECRET))
    assert _introspect(oauth, http, tokens["access_token"]).json() == {"active": False}


def test_introspection_needs_an_allowed_client(oauth: OAuthEnv, http: httpx.Client) -> None:
    tokens = oauth.tokens(http)
    not_allowed = _introspect(oauth, http, tokens["access_token"], auth=("shop", SECRET))
    assert not_allowed.status_code == 403
    assert not_allowed.json()["error"] == "unauthorized_client"
    wrong = _introspect(oauth, http, tokens["access_token"], auth=("orders-api", "nope"))
    assert wrong.status_code == 401
    anonymous = http.post(f"{oauth.url}/introspect", data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401


def test_expired_access_token_is_inactive(oauth: OAuthEnv, http: httpx.Client) -> None:
    tokens = oauth.tokens(http)
    oauth.clock.advance(3601)
    assert _introspect(oauth, http, tokens["access_token"]).json() == {"active": False}


def test_metadata_and_health(oauth: OAuthEnv, http: httpx.Client) -> None:
    meta = http.get(f"{oauth.url}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == oauth.url
    assert meta["authorization_endpoint"] == f"{oauth.url}/authorize"
    assert meta["token_endpoint"] == f"{oauth.url}/token"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert meta["scopes_supported"] == ["orders:read", "orders:write", "profile"]
    assert http.get(f"{oauth.url}/healthz").json() == {"status": "ok"}


def _implementer(oauth: OAuthEnv, verifier: str) -> Starlette:
    """A tiny ATH-implementer stand-in: sets its own cookie, redirects to /authorize."""

    async def start(_request: Request) -> Response:
        params = {
            "response_type": "code",
            "client_id": "shop",
            "redirect_uri": oauth.redirect_uri,
            "scope": "orders:read orders:write",
            "state": secrets.token_urlsafe(16),
            "code_challenge": code_challenge_s256(verifier),
            "code_challenge_method": "S256",
        }
        response = RedirectResponse(f"{oauth.url}/authorize?{urlencode(params)}", 302)
        response.set_cookie("implementer_binding", "b1", httponly=True, samesite="lax")
        return response

    async def whoami(request: Request) -> Response:
        return PlainTextResponse(request.cookies.get("implementer_binding", "none"))

    return Starlette(routes=[Route("/start", start), Route("/whoami", whoami)])


def test_drive_consent_from_an_implementer_url(oauth: OAuthEnv, http: httpx.Client) -> None:
    verifier = generate_code_verifier()
    with serve_in_thread(_implementer(oauth, verifier)) as implementer:
        result = drive_consent(
            http,
            f"{implementer.url}/start",
            username="alice",
            password=PASSWORD,
            scopes=["orders:write"],
            stop_at=oauth.redirect_uri,
        )
        assert isinstance(result, str)
        assert http.get(f"{implementer.url}/whoami").text == "b1"
    code = result.split("code=")[1].split("&")[0]
    token = oauth.exchange(http, code, code_verifier=verifier)
    assert token.json()["scope"] == "orders:write"


async def test_drive_consent_async(oauth: OAuthEnv) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        result = await drive_consent_async(
            client,
            oauth.authorize_url(),
            username="alice",
            password=PASSWORD,
            allow=False,
            stop_at=oauth.redirect_uri,
        )
    assert isinstance(result, str) and "error=access_denied" in result


def test_drive_consent_returns_the_final_page(oauth: OAuthEnv, http: httpx.Client) -> None:
    result = drive_consent(
        http,
        oauth.authorize_url(redirect_uri="http://127.0.0.1:1/nope"),
        username="alice",
        password=PASSWORD,
        stop_at=oauth.redirect_uri,
    )
    assert isinstance(result, httpx.Response) and result.status_code == 400


def test_decisions_are_audited_without_secrets(
    oauth: OAuthEnv, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="athkit.oauthserver.audit")
    drive_consent(
        http, oauth.authorize_url(), username="alice", password="guess-1", stop_at="http://x/"
    )
    http.post(f"{oauth.url}/login", data={"csrf_token": "forged"})
    code = oauth.consent(http)["code"]
    tokens = oauth.exchange(http, code).json()
    oauth.exchange(http, code)
    http.post(f"{oauth.url}/token", data={"grant_type": "x"}, auth=("shop", "wrong-secret-77"))
    text = caplog.text
    for event in [
        "authorization_started",
        "login_failed",
        "csrf_rejected",
        "consent_granted",
        "token_issued",
        "code_reused",
        "client_auth_failed",
        "token_rejected",
    ]:
        assert event in text, event
    for secret in [PASSWORD, "guess-1", "wrong-secret-77", SECRET, code, tokens["access_token"]]:
        assert secret not in text
