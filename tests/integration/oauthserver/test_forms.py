"""The login and consent forms: CSRF, cookies, single use, and the browser binding."""

from __future__ import annotations

import re

import httpx

from athkit.oauthserver import create_oauth_app
from athkit.testing import free_port, serve_in_thread
from tests.integration.oauthserver.conftest import PASSWORD, Clock, OAuthEnv, make_config


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field"
    return match.group(1)


def _to_login(oauth: OAuthEnv, http: httpx.Client) -> httpx.Response:
    step = http.get(oauth.authorize_url())
    assert step.status_code == 302
    page = http.get(f"{oauth.url}{step.headers['location']}")
    assert page.status_code == 200
    return page


def _login(oauth: OAuthEnv, http: httpx.Client, csrf: str | None) -> httpx.Response:
    page = _to_login(oauth, http)
    data = {
        "request": _hidden(page.text, "request"),
        "username": "alice",
        "password": PASSWORD,
    }
    if csrf is not None:
        data["csrf_token"] = csrf if csrf != "real" else _hidden(page.text, "csrf_token")
    return http.post(f"{oauth.url}/login", data=data)


def test_login_needs_the_csrf_token(oauth: OAuthEnv, http: httpx.Client) -> None:
    for csrf in (None, "", "forged-token"):
        response = _login(oauth, http, csrf)
        assert response.status_code == 400
        assert "CSRF" in response.text
    assert _login(oauth, http, "real").status_code == 303


def test_consent_needs_the_csrf_token(oauth: OAuthEnv, http: httpx.Client) -> None:
    page = _to_login(oauth, http)
    pre_login_csrf = _hidden(page.text, "csrf_token")
    logged_in = http.post(
        f"{oauth.url}/login",
        data={
            "request": _hidden(page.text, "request"),
            "csrf_token": pre_login_csrf,
            "username": "alice",
            "password": PASSWORD,
        },
    )
    assert logged_in.status_code == 303
    consent = http.get(f"{oauth.url}{logged_in.headers['location']}")
    assert consent.status_code == 200
    form = {
        "request": _hidden(consent.text, "request"),
        "scope": ["orders:read"],
        "action": "allow",
    }
    # The login rotated the token: the pre-login one no longer works.
    for csrf in (None, "forged-token", pre_login_csrf):
        data = dict(form) if csrf is None else {**form, "csrf_token": csrf}
        response = http.post(f"{oauth.url}/consent", data=data)
        assert response.status_code == 400
        assert "location" not in response.headers
    ok = http.post(
        f"{oauth.url}/consent", data={**form, "csrf_token": _hidden(consent.text, "csrf_token")}
    )
    assert ok.status_code == 303
    assert "code=" in ok.headers["location"]
    # The same form cannot be submitted twice.
    again = http.post(
        f"{oauth.url}/consent", data={**form, "csrf_token": _hidden(consent.text, "csrf_token")}
    )
    assert again.status_code == 400


def test_another_browser_cannot_use_the_request(oauth: OAuthEnv, http: httpx.Client) -> None:
    page = _to_login(oauth, http)
    request_id = _hidden(page.text, "request")
    with httpx.Client() as other:
        stolen = other.get(f"{oauth.url}/login?request={request_id}")
        assert stolen.status_code == 400
        assert "expired" in stolen.text


def test_session_cookie_flags(oauth: OAuthEnv, http: httpx.Client) -> None:
    step = http.get(oauth.authorize_url())
    cookie = step.headers["set-cookie"]
    assert cookie.startswith("athoauth_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # the issuer is http here
    page = http.get(f"{oauth.url}{step.headers['location']}")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_https_issuer_sets_secure_cookies(http: httpx.Client) -> None:
    port = free_port()
    config = make_config(port, issuer=f"https://127.0.0.1:{port}")
    with serve_in_thread(create_oauth_app(config, clock=Clock()), port=port) as server:
        env = OAuthEnv(url=server.url, config=config, clock=Clock())
        step = http.get(env.authorize_url())
        assert "Secure" in step.headers["set-cookie"]


def test_login_expires(oauth: OAuthEnv, http: httpx.Client) -> None:
    oauth.tokens(http)
    oauth.clock.advance(8 * 3600 + 1)
    step = http.get(oauth.authorize_url())
    assert step.headers["location"].startswith("/login?")


def test_pending_request_expires(oauth: OAuthEnv, http: httpx.Client) -> None:
    page = _to_login(oauth, http)
    oauth.clock.advance(601)
    response = http.post(
        f"{oauth.url}/login",
        data={
            "request": _hidden(page.text, "request"),
            "csrf_token": _hidden(page.text, "csrf_token"),
            "username": "alice",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 400
    assert "expired" in response.text


def test_state_and_existing_query_are_kept(oauth: OAuthEnv, http: httpx.Client) -> None:
    port = free_port()
    base = make_config(port)
    client = base.clients[0].model_copy(
        update={"redirect_uris": ["http://127.0.0.1:1/cb?tenant=7"]}
    )
    config = make_config(port, clients=[client])
    with serve_in_thread(create_oauth_app(config), port=port) as server:
        env = OAuthEnv(
            url=server.url, config=config, clock=Clock(), redirect_uri="http://127.0.0.1:1/cb"
        )
        url = env.authorize_url(redirect_uri="http://127.0.0.1:1/cb?tenant=7")
        answer = env.consent(http, url=url)
        assert answer["tenant"] == "7" and answer["state"] == "state-123" and answer["code"]


def test_password_guessing_is_slowed_down(oauth: OAuthEnv, http: httpx.Client) -> None:
    from athkit.testing import drive_consent

    def attempt(password: str) -> httpx.Response | str:
        return drive_consent(
            http,
            oauth.authorize_url(),
            username="alice",
            password=password,
            stop_at=oauth.redirect_uri,
        )

    for i in range(5):
        failed = attempt(f"guess-{i}")
        assert isinstance(failed, httpx.Response) and failed.status_code == 401
    # The sixth try is refused even with the right password, until the window has passed.
    blocked = attempt(PASSWORD)
    assert isinstance(blocked, httpx.Response) and blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.text
    oauth.clock.advance(301)
    assert isinstance(attempt(PASSWORD), str)
    # A successful sign-in clears the count.
    http.cookies.clear()
    assert isinstance(attempt("guess-again"), httpx.Response)
    http.cookies.clear()
    assert isinstance(attempt(PASSWORD), str)
