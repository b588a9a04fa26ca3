"""Agent-aware consent (ATH adoption levels 2–3): the signed ath_context on /authorize."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from athkit.protocol import (
    code_challenge_s256,
    create_consent_context,
    generate_code_verifier,
    generate_private_key,
)
from tests.integration.oauthserver.conftest import PASSWORD, OAuthEnv

AGENT_ID = "https://helper.example/.well-known/agent.json"


def _context(oauth: OAuthEnv, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "client_id": oauth.client_id,
        "audience": oauth.url,
        "code_challenge": oauth.challenge,
        "agent_id": AGENT_ID,
        "agent_name": "Shopping Helper",
        "developer": {"name": "Acme Agents", "id": "acme"},
        "approved_scopes": ["orders:read", "profile"],
    }
    args.update(overrides)
    key = args.pop("key", oauth.context_key)
    return create_consent_context(key, **args)


def _consent_page(oauth: OAuthEnv, http: httpx.Client, context: str) -> httpx.Response:
    step = http.get(oauth.authorize_url(ath_context=context))
    assert step.status_code == 302, step.text
    login = http.get(f"{oauth.url}{step.headers['location']}")
    fields = dict(re.findall(r'name="(csrf_token|request)" value="([^"]*)"', login.text))
    done = http.post(
        f"{oauth.url}/login", data={**fields, "username": "alice", "password": PASSWORD}
    )
    assert done.status_code == 303
    return http.get(f"{oauth.url}{done.headers['location']}")


def test_consent_page_shows_the_agent_and_unavailable_scopes(
    oauth: OAuthEnv, http: httpx.Client
) -> None:
    page = _consent_page(oauth, http, _context(oauth))
    assert page.status_code == 200
    assert "Shopping Helper" in page.text
    assert "Acme Agents" in page.text and "acme" in page.text
    assert AGENT_ID in page.text
    assert re.search(r'value="orders:write" disabled', page.text)
    assert not re.search(r'value="orders:read" disabled', page.text)
    assert "unavailable" in page.text


def test_granted_is_ticked_and_requested_and_approved(oauth: OAuthEnv, http: httpx.Client) -> None:
    url = oauth.authorize_url(ath_context=_context(oauth))
    body = oauth.tokens(http, url=url)
    assert body["scope"] == "orders:read profile"
    url = oauth.authorize_url(ath_context=_context(oauth), scope="orders:read orders:write")
    assert oauth.tokens(http, url=url, scopes=["orders:read", "orders:write"])["scope"] == (
        "orders:read"
    )


def test_tampered_form_cannot_grant_an_unapproved_scope(
    oauth: OAuthEnv, http: httpx.Client
) -> None:
    page = _consent_page(oauth, http, _context(oauth))
    fields = dict(re.findall(r'name="(csrf_token|request)" value="([^"]*)"', page.text))
    response = http.post(
        f"{oauth.url}/consent",
        data={**fields, "scope": ["orders:write", "orders:read", "admin"], "action": "allow"},
    )
    assert response.status_code == 303
    answer = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    token = oauth.exchange(http, answer["code"])
    assert token.json()["scope"] == "orders:read"


def test_tampered_form_with_only_unapproved_scopes_grants_nothing(
    oauth: OAuthEnv, http: httpx.Client
) -> None:
    page = _consent_page(oauth, http, _context(oauth))
    fields = dict(re.findall(r'name="(csrf_token|request)" value="([^"]*)"', page.text))
    response = http.post(
        f"{oauth.url}/consent", data={**fields, "scope": "orders:write", "action": "allow"}
    )
    location = response.headers["location"]
    assert "error=access_denied" in location and "code=" not in location


def _rejected(oauth: OAuthEnv, http: httpx.Client, context: str) -> str:
    response = http.get(oauth.authorize_url(ath_context=context))
    assert response.status_code == 302
    answer = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    assert answer["error"] == "invalid_request"
    assert answer["state"] == "state-123"
    return answer["error_description"]


def test_forged_context_is_refused(oauth: OAuthEnv, http: httpx.Client) -> None:
    # The agent does not hold the implementer's key; its own key does not verify.
    forged = _context(oauth, key=generate_private_key())
    assert "signature" in _rejected(oauth, http, forged)


def test_context_lifted_to_another_request_is_refused(oauth: OAuthEnv, http: httpx.Client) -> None:
    other = code_challenge_s256(generate_code_verifier())
    assert "another authorization request" in _rejected(
        oauth, http, _context(oauth, code_challenge=other)
    )


def test_context_for_another_server_or_client_is_refused(
    oauth: OAuthEnv, http: httpx.Client
) -> None:
    assert "aud" in _rejected(oauth, http, _context(oauth, audience="http://127.0.0.1:2"))
    assert "iss" in _rejected(oauth, http, _context(oauth, client_id="someone-else"))


def test_expired_context_is_refused(oauth: OAuthEnv, http: httpx.Client) -> None:
    context = _context(oauth)
    oauth.clock.advance(301)
    assert "expired" in _rejected(oauth, http, context)


def test_context_for_a_client_without_a_key_is_refused(oauth: OAuthEnv, http: httpx.Client) -> None:
    response = http.get(
        oauth.authorize_url(
            client_id="orders-api",
            redirect_uri="http://127.0.0.1:1/unused",
            scope="profile",
            ath_context=_context(oauth, client_id="orders-api"),
        )
    )
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1:1/unused?")
    assert "error=invalid_request" in location and "ath_context_key" in location
