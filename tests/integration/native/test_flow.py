"""The whole native-mode handshake over real HTTP, with real attestation verification."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.integration.native.harness import World


def test_discovery_and_openapi(world: World) -> None:
    doc = world.http.get(f"{world.base}/.well-known/ath-app.json").json()
    assert doc["auth"]["registration_endpoint"] == f"{world.base}/ath/agents/register"
    assert doc["auth"]["authorization_endpoint"] == f"{world.base}/ath/authorize"
    assert doc["auth"]["token_endpoint"] == f"{world.base}/ath/token"
    assert doc["api_base"] == f"{world.base}/api"
    spec = world.http.get(f"{world.base}/ath/openapi.json").json()
    assert "/ath/token" in spec["paths"] and "TokenRequest" in spec["components"]["schemas"]


def test_full_handshake_then_api_calls(world: World) -> None:
    agent = world.new_agent("mail")
    client_id, secret = world.registered(agent, ["orders:read", "orders:write", "admin"])
    status = world.http.get(f"{world.base}/ath/agents/{client_id}", auth=(client_id, secret))
    assert status.status_code == 200
    assert status.json()["agent_status"] == "approved"
    assert status.json()["approved_providers"][0]["denied_scopes"] == ["admin"]

    url, session_id, state = world.start(agent, client_id, ["orders:read", "orders:write"])
    assert url == f"{world.base}/ath/consent/{session_id}"
    # The consent link binds the browser with an HttpOnly, SameSite=Lax cookie and sends it on
    # to the provider with PKCE S256, our own state and the signed agent context.
    with world.http.__class__(timeout=10) as browser:
        first = browser.get(url)
        assert first.status_code == 302
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/ath/" in cookie
        q = {k: v[0] for k, v in parse_qs(urlsplit(first.headers["location"]).query).items()}
        assert q["code_challenge_method"] == "S256" and "ath_context" in q
        assert q["state"] != state and q["redirect_uri"] == f"{world.base}/ath/callback"
        query = world.consent(first.headers["location"], browser=browser, scopes=["orders:read"])
    assert query["state"] == state
    response = world.token(agent, client_id, secret, session_id, query["code"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["cache-control"] == "no-store"
    assert body["token_type"] == "Bearer" and body["access_token"].startswith("ath_at_")
    assert body["effective_scopes"] == ["orders:read"]
    assert body["scope_intersection"] == {
        "agent_approved": ["orders:read", "orders:write"],
        "user_consented": ["orders:read"],
        "effective": ["orders:read"],
    }
    assert body["expires_in"] <= 3600 and body["agent_id"] == agent.agent_id

    api = world.api(body["access_token"], agent)
    assert api.status_code == 200
    assert api.json() == {"user": "user-alice-1", "agent": agent.agent_id, "orders": []}
    assert world.api(body["access_token"], agent, "/api/m/orders").status_code == 200
    # require_scopes as a dependency: profile was not consented, so 403, rendered per ATH §7.
    refused = world.api(body["access_token"], agent, "/api/profile")
    assert refused.status_code == 403 and refused.json()["code"] == "SCOPE_NOT_APPROVED"
    unauthenticated = world.http.get(f"{world.base}/api/profile")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    # The route map allows POST only with orders:write, which the user did not consent to.
    denied = world.api(body["access_token"], agent, "/api/m/orders", method="POST")
    assert denied.status_code == 403 and denied.json()["code"] == "SCOPE_NOT_APPROVED"
    world.assert_audited("SCOPE_NOT_APPROVED", "scope_violation")
    events = {e["event"] for e in world.audit(agent_id=agent.agent_id)}
    assert {"agent_registered", "authorization_started", "access_granted"} <= events


def test_completion_page_without_redirect_uri(world: World) -> None:
    import re

    import httpx

    from athkit.testing import drive_consent
    from tests.integration.native.harness import PASSWORD

    agent = world.new_agent("cli")
    client_id, secret = world.registered(agent)
    body = world.authorize(agent, client_id, ["orders:read", "profile"], redirect=None).json()
    with httpx.Client(timeout=10) as browser:
        page = drive_consent(browser, body["authorization_url"], username="bob", password=PASSWORD)
    assert isinstance(page, httpx.Response) and page.status_code == 200
    match = re.search(r'<code class="code-box" id="ath-code">([^<]+)</code>', page.text)
    assert match is not None, page.text
    response = world.token(agent, client_id, secret, body["ath_session_id"], match.group(1))
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert world.api(token, agent).json()["user"] == "user-bob-2"
    profile = world.api(token, agent, "/api/profile")
    assert profile.json() == {"user": "user-bob-2", "scopes": ["orders:read", "profile"]}
