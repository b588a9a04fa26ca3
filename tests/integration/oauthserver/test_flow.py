"""The authorization code flow over real HTTP: consent, codes, PKCE and the token endpoint."""

from __future__ import annotations

import httpx

from athkit.testing import drive_consent
from tests.integration.oauthserver.conftest import OAuthEnv


def test_full_code_flow_with_pkce(oauth: OAuthEnv, http: httpx.Client) -> None:
    answer = oauth.consent(http)
    assert answer["state"] == "state-123"
    assert answer["iss"] == oauth.url
    response = oauth.exchange(http, answer["code"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "orders:read orders:write profile"
    assert body["access_token"] and body["refresh_token"]
    me = http.get(
        f"{oauth.url}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json() == {
        "sub": "user-alice-1",
        "name": "Alice Example",
        "preferred_username": "alice",
        "email": "alice@example.com",
    }


def test_subset_consent_grants_only_the_ticked_scopes(oauth: OAuthEnv, http: httpx.Client) -> None:
    body = oauth.tokens(http, scopes=["orders:read"])
    assert body["scope"] == "orders:read"


def test_unticking_everything_grants_nothing(oauth: OAuthEnv, http: httpx.Client) -> None:
    answer = oauth.consent(http, scopes=[])
    assert answer["error"] == "access_denied"
    assert "code" not in answer


def test_deny_redirects_with_access_denied(oauth: OAuthEnv, http: httpx.Client) -> None:
    answer = oauth.consent(http, allow=False)
    assert answer["error"] == "access_denied"
    assert answer["state"] == "state-123"
    assert "code" not in answer


def test_wrong_verifier_is_refused_and_burns_the_code(oauth: OAuthEnv, http: httpx.Client) -> None:
    code = oauth.consent(http)["code"]
    wrong = oauth.exchange(http, code, code_verifier="x" * 43)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    # An attacker guessing verifiers gets one try: the code is spent.
    assert oauth.exchange(http, code).json()["error"] == "invalid_grant"


def test_reused_code_is_refused_and_its_tokens_revoked(oauth: OAuthEnv, http: httpx.Client) -> None:
    code = oauth.consent(http)["code"]
    first = oauth.exchange(http, code)
    assert first.status_code == 200
    tokens = first.json()
    again = oauth.exchange(http, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    me = http.get(
        f"{oauth.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 401
    refresh = http.post(
        f"{oauth.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(oauth.client_id, oauth.secret),
    )
    assert refresh.json()["error"] == "invalid_grant"


def test_expired_code_is_refused(oauth: OAuthEnv, http: httpx.Client) -> None:
    code = oauth.consent(http)["code"]
    oauth.clock.advance(61)  # code_lifetime is 60 s
    response = oauth.exchange(http, code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "expired" in response.json()["error_description"]


def test_redirect_uri_must_match_at_the_token_endpoint(oauth: OAuthEnv, http: httpx.Client) -> None:
    code = oauth.consent(http)["code"]
    response = oauth.exchange(http, code, redirect_uri="http://127.0.0.1:1/other")
    assert response.json()["error"] == "invalid_grant"


def test_unregistered_redirect_uri_is_an_error_page_not_a_redirect(
    oauth: OAuthEnv, http: httpx.Client
) -> None:
    for url in [
        oauth.authorize_url(redirect_uri="http://127.0.0.1:1/evil"),
        oauth.authorize_url(redirect_uri="http://127.0.0.1:1/callback/"),
        oauth.authorize_url(redirect_uri=None),
        oauth.authorize_url(client_id="nobody"),
    ]:
        response = http.get(url)
        assert response.status_code == 400
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")
        assert "127.0.0.1:1/evil" not in response.text


def test_json_body_to_token_is_refused(oauth: OAuthEnv, http: httpx.Client) -> None:
    code = oauth.consent(http)["code"]
    response = http.post(
        f"{oauth.url}/token",
        json={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": oauth.redirect_uri,
            "code_verifier": oauth.verifier,
        },
        auth=(oauth.client_id, oauth.secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"
    # The code is still good for a proper request.
    assert oauth.exchange(http, code).status_code == 200


def test_refresh_tokens_rotate_and_old_ones_die(oauth: OAuthEnv, http: httpx.Client) -> None:
    first = oauth.tokens(http)

    def refresh(token: str, **extra: str) -> httpx.Response:
        return http.post(
            f"{oauth.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": token, **extra},
            auth=(oauth.client_id, oauth.secret),
        )

    second = refresh(first["refresh_token"])
    assert second.status_code == 200
    new = second.json()
    assert new["refresh_token"] != first["refresh_token"]
    assert new["scope"] == first["scope"]
    narrowed = refresh(new["refresh_token"], scope="orders:read")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "orders:read"
    latest = narrowed.json()
    # The old refresh token is dead, and presenting it ends the whole grant.
    old = refresh(first["refresh_token"])
    assert old.status_code == 400
    assert old.json()["error"] == "invalid_grant"
    assert refresh(latest["refresh_token"]).json()["error"] == "invalid_grant"
    me = http.get(
        f"{oauth.url}/userinfo", headers={"Authorization": f"Bearer {latest['access_token']}"}
    )
    assert me.status_code == 401


def test_refresh_cannot_widen_the_grant(oauth: OAuthEnv, http: httpx.Client) -> None:
    tokens = oauth.tokens(http, scopes=["orders:read"])
    response = http.post(
        f"{oauth.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "orders:read orders:write",
        },
        auth=(oauth.client_id, oauth.secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_revoke_access_token(oauth: OAuthEnv, http: httpx.Client) -> None:
    tokens = oauth.tokens(http)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert http.get(f"{oauth.url}/userinfo", headers=bearer).status_code == 200
    response = http.post(
        f"{oauth.url}/revoke",
        data={"token": tokens["access_token"], "token_type_hint": "access_token"},
        auth=(oauth.client_id, oauth.secret),
    )
    assert response.status_code == 200
    me = http.get(f"{oauth.url}/userinfo", headers=bearer)
    assert me.status_code == 401
    assert 'error="invalid_token"' in me.headers["www-authenticate"]
    # RFC 7009 §2.2: unknown tokens are answered 200 as well.
    unknown = http.post(
        f"{oauth.url}/revoke", data={"token": "nope"}, auth=(oauth.client_id, oauth.secret)
    )
    assert unknown.status_code == 200


def test_revoking_the_refresh_token_ends_the_grant(oauth: OAuthEnv, http: httpx.Client) -> None:
    tokens = oauth.tokens(http)
    response = http.post(
        f"{oauth.url}/revoke",
        data={"token": tokens["refresh_token"], "client_id": "shop", "client_secret": oauth.secret},
    )
    assert response.status_code == 200
    me = http.get(
        f"{oauth.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 401
    refresh = http.post(
        f"{oauth.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(oauth.client_id, oauth.secret),
    )
    assert refresh.json()["error"] == "invalid_grant"


def test_another_client_cannot_revoke(oauth: OAuthEnv, http: httpx.Client) -> None:
    from tests.integration.oauthserver.conftest import RS_SECRET

    tokens = oauth.tokens(http)
    response = http.post(
        f"{oauth.url}/revoke",
        data={"token": tokens["access_token"]},
        auth=("orders-api", RS_SECRET),
    )
    assert response.status_code == 200
    me = http.get(
        f"{oauth.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200


def test_an_existing_login_goes_straight_to_consent(oauth: OAuthEnv, http: httpx.Client) -> None:
    oauth.tokens(http)
    step = http.get(oauth.authorize_url())
    assert step.status_code == 302
    assert step.headers["location"].startswith("/consent?")
    # No password needed now: the driver is given a wrong one and still gets through.
    result = drive_consent(
        http,
        oauth.authorize_url(),
        username="alice",
        password="wrong",
        stop_at=oauth.redirect_uri,
    )
    assert isinstance(result, str) and "code=" in result


def test_loopback_redirect_on_any_port(http: httpx.Client) -> None:
    from athkit.oauthserver import create_oauth_app
    from athkit.testing import free_port, serve_in_thread
    from tests.integration.oauthserver.conftest import Clock, make_config

    port = free_port()
    shop = (
        make_config(port).clients[0].model_copy(update={"redirect_uris": ["http://127.0.0.1/cb"]})
    )
    config = make_config(port, clients=[shop])
    with serve_in_thread(create_oauth_app(config), port=port) as server:
        env = OAuthEnv(
            url=server.url, config=config, clock=Clock(), redirect_uri="http://127.0.0.1:43210/cb"
        )
        assert env.tokens(http)["scope"] == "orders:read orders:write profile"
        code = env.consent(http)["code"]
        moved = env.exchange(http, code, redirect_uri="http://127.0.0.1:43211/cb")
        assert moved.json()["error"] == "invalid_grant"
