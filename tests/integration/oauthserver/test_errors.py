"""Bad, hostile and out-of-order requests get the RFC 6749 error, never a 500."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.integration.oauthserver.conftest import OAuthEnv


def _redirect_error(http: httpx.Client, url: str) -> dict[str, str]:
    response = http.get(url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1:1/callback?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"scope": "orders:read admin"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
        ({"resource": "not a uri"}, "invalid_target"),
        ({"ath_context": "a.b.c"}, "invalid_request"),
    ],
)
def test_authorize_errors_redirect_with_state(
    oauth: OAuthEnv, http: httpx.Client, overrides: dict[str, str | None], error: str
) -> None:
    answer = _redirect_error(http, oauth.authorize_url(**overrides))
    assert answer["error"] == error
    assert answer["state"] == "state-123"
    assert answer["error_description"]
    assert "code" not in answer


def test_plain_pkce_challenge_is_explained(oauth: OAuthEnv, http: httpx.Client) -> None:
    url = oauth.authorize_url(code_challenge=oauth.verifier, code_challenge_method="plain")
    answer = _redirect_error(http, url)
    assert "S256" in answer["error_description"]


def test_duplicate_parameters_are_refused(oauth: OAuthEnv, http: httpx.Client) -> None:
    answer = _redirect_error(http, oauth.authorize_url() + "&scope=profile")
    assert answer["error"] == "invalid_request"
    twice = http.get(oauth.authorize_url() + "&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fother")
    assert twice.status_code == 400 and "location" not in twice.headers


def test_client_authentication_by_basic_and_by_post(oauth: OAuthEnv, http: httpx.Client) -> None:
    code = oauth.consent(http)["code"]
    by_post = http.post(
        f"{oauth.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": oauth.redirect_uri,
            "code_verifier": oauth.verifier,
            "client_id": oauth.client_id,
            "client_secret": oauth.secret,
        },
    )
    assert by_post.status_code == 200
    refreshed = http.post(
        f"{oauth.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": by_post.json()["refresh_token"]},
        auth=(oauth.client_id, oauth.secret),
    )
    assert refreshed.status_code == 200


def test_wrong_client_secret(oauth: OAuthEnv, http: httpx.Client) -> None:
    code = oauth.consent(http)["code"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": oauth.redirect_uri,
        "code_verifier": oauth.verifier,
    }
    basic = http.post(f"{oauth.url}/token", data=data, auth=(oauth.client_id, "wrong"))
    assert basic.status_code == 401
    assert basic.json()["error"] == "invalid_client"
    assert basic.headers["www-authenticate"].startswith("Basic")
    posted = http.post(
        f"{oauth.url}/token", data={**data, "client_id": oauth.client_id, "client_secret": "no"}
    )
    assert posted.status_code == 401
    assert posted.json()["error"] == "invalid_client"
    unknown = http.post(f"{oauth.url}/token", data=data, auth=("nobody", "x"))
    assert unknown.status_code == 401
    anonymous = http.post(f"{oauth.url}/token", data=data)
    assert anonymous.status_code == 401
    # None of those spent the code.
    assert oauth.exchange(http, code).status_code == 200


def test_code_of_another_client_is_refused(oauth: OAuthEnv, http: httpx.Client) -> None:
    from tests.integration.oauthserver.conftest import RS_SECRET

    code = oauth.consent(http)["code"]
    stolen = http.post(
        f"{oauth.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": oauth.redirect_uri,
            "code_verifier": oauth.verifier,
        },
        auth=("orders-api", RS_SECRET),
    )
    assert stolen.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"grant_type": "password", "username": "alice", "password": "x"},
            "unsupported_grant_type",
        ),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({}, "invalid_request"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "nope"}, "invalid_request"),
        (
            {
                "grant_type": "authorization_code",
                "code": "nope",
                "code_verifier": "v" * 43,
                "redirect_uri": "http://127.0.0.1:1/callback",
            },
            "invalid_grant",
        ),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, "invalid_grant"),
    ],
)
def test_token_endpoint_errors(
    oauth: OAuthEnv, http: httpx.Client, data: dict[str, str], error: str
) -> None:
    response = http.post(f"{oauth.url}/token", data=data, auth=(oauth.client_id, oauth.secret))
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


def test_hostile_token_requests(oauth: OAuthEnv, http: httpx.Client) -> None:
    url = f"{oauth.url}/token"
    auth = (oauth.client_id, oauth.secret)
    cases = [
        http.post(url, content=b"\xff\xfe garbage", auth=auth),
        http.post(
            url,
            content=b"grant_type=a&grant_type=b",
            auth=auth,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        http.post(
            url, data={"grant_type": "refresh_token", "refresh_token": "x" * 10000}, auth=auth
        ),
        http.post(url, files={"f": b"x"}, data={"grant_type": "authorization_code"}, auth=auth),
        http.post(
            url,
            data={"grant_type": "x"},
            headers={"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        ),
        http.post(url, data={"grant_type": "x"}, headers={"Authorization": "Basic ***"}),
        http.post(url, data={"grant_type": "x"}, headers={"Authorization": "Bearer abc"}),
    ]
    for response in cases:
        assert response.status_code in (400, 401), response.text
        assert response.json()["error"] in ("invalid_request", "invalid_client")
    assert http.get(url).status_code == 405


def test_hostile_browser_requests(oauth: OAuthEnv, http: httpx.Client) -> None:
    for response in [
        http.get(f"{oauth.url}/login"),
        http.get(f"{oauth.url}/login?request=nope"),
        http.get(f"{oauth.url}/consent?request=nope"),
        http.post(f"{oauth.url}/login", content=b"{}", headers={"Content-Type": "text/json"}),
        http.post(f"{oauth.url}/consent", data={"action": "allow"}),
        http.get(oauth.authorize_url(state="s" * 5000)),
    ]:
        assert response.status_code in (302, 400), response.text
        if response.status_code == 400:
            assert response.headers["content-type"].startswith("text/html")


def test_wrong_password_shows_the_form_again(oauth: OAuthEnv, http: httpx.Client) -> None:
    from athkit.testing import drive_consent

    result = drive_consent(
        http, oauth.authorize_url(), username="alice", password="nope", stop_at=oauth.redirect_uri
    )
    assert isinstance(result, httpx.Response)
    assert result.status_code == 401
    assert "Wrong username or password" in result.text
    unknown = drive_consent(
        http, oauth.authorize_url(), username="mallory", password="x", stop_at=oauth.redirect_uri
    )
    assert isinstance(unknown, httpx.Response) and unknown.status_code == 401


def test_userinfo_needs_a_valid_bearer(oauth: OAuthEnv, http: httpx.Client) -> None:
    missing = http.get(f"{oauth.url}/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bogus = http.get(f"{oauth.url}/userinfo", headers={"Authorization": "Bearer nope"})
    assert bogus.status_code == 401
    tokens = oauth.tokens(http)
    # A refresh token is not an access token.
    refresh = http.get(
        f"{oauth.url}/userinfo", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
    )
    assert refresh.status_code == 401
    oauth.clock.advance(3601)
    expired = http.get(
        f"{oauth.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert expired.status_code == 401


def test_too_long_state_is_refused(oauth: OAuthEnv, http: httpx.Client) -> None:
    response = http.get(oauth.authorize_url(state="s" * 3000))
    assert response.status_code == 302
    assert "error=invalid_request" in response.headers["location"]
    assert "sss" not in response.headers["location"]
