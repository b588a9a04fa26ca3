"""Interoperability decisions (ATH §4.1, §4.4): the public SDKs' default redirect (our own
callback) ends on the completion page, a session without an agent redirect may be exchanged
without the code, and scopes waiting for review are listed as ``pending_scopes``."""

from __future__ import annotations

import re

import httpx

from athkit.testing import drive_consent
from tests.integration.native.harness import PASSWORD, World


def _consent_page(url: str) -> httpx.Response:
    with httpx.Client(timeout=10) as browser:
        page = drive_consent(browser, url, username="alice", password=PASSWORD)
    assert isinstance(page, httpx.Response), page
    return page


def _code_on(page: httpx.Response) -> str:
    match = re.search(r'id="ath-code">([^<]+)</code>', page.text)
    assert match is not None, page.text
    return match.group(1)


def test_own_callback_as_redirect_ends_on_the_completion_page(world: World) -> None:
    own = f"{world.base}/ath/callback"
    agent = world.new_agent("sdk-default")
    registered = world.register(agent, ["orders:read"], redirect_uris=[own])
    assert registered.status_code == 201, registered.text
    client_id, secret = registered.json()["client_id"], registered.json()["client_secret"]
    for spelling in (own, own + "/", own.replace("http://", "HTTP://")):
        started = world.authorize(agent, client_id, ["orders:read"], redirect=spelling)
        assert started.status_code == 200, started.text
    body = started.json()

    page = _consent_page(body["authorization_url"])
    # Not a redirect back to the callback (which would answer STATE_MISMATCH): the code page.
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert str(page.url).startswith(own)
    code = _code_on(page)
    session_id = body["ath_session_id"]
    assert f"ath authorize --server {world.base} --session {session_id} --code {code}" in page.text
    assert f"client.exchange_token(&#34;{code}&#34;, &#34;{session_id}&#34;)" in page.text
    assert 'id="copy-code"' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp.split("script-src")[1]
    assert page.headers["cache-control"] == "no-store"

    token = world.token(agent, client_id, secret, session_id, code)
    assert token.status_code == 200, token.text
    assert token.json()["effective_scopes"] == ["orders:read"]


def test_a_look_alike_of_our_callback_is_still_a_foreign_redirect(world: World) -> None:
    agent = world.new_agent("look-alike")
    client_id, _ = world.registered(agent)
    for other in (
        f"{world.base}/ath/callback?x=1",
        f"{world.base}/ath/callbacks",
        world.base.replace("127.0.0.1", "localhost") + "/ath/callback",
    ):
        refused = world.authorize(agent, client_id, ["orders:read"], redirect=other)
        assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_REQUEST"), other


def test_exchange_without_code_only_for_a_session_without_redirect(world: World) -> None:
    agent = world.new_agent("device-like")
    client_id, secret = world.registered(agent)
    body = world.authorize(agent, client_id, ["orders:read"], redirect=None).json()
    session_id = body["ath_session_id"]

    early = world.token(agent, client_id, secret, session_id, None)
    assert (early.status_code, early.json()["code"]) == (400, "SESSION_NOT_FOUND")
    assert early.json()["details"]["reason"] == "consent_incomplete"

    page = _consent_page(body["authorization_url"])
    assert page.status_code == 200
    wrong = world.token(agent, client_id, secret, session_id, "ath_code_wrong")
    assert (wrong.status_code, wrong.json()["code"]) == (400, "SESSION_NOT_FOUND")
    # The secret still counts: the session id alone is nothing.
    stolen = world.token(agent, client_id, "ath_cs_not-the-secret", session_id, None)
    assert (stolen.status_code, stolen.json()["code"]) == (401, "INVALID_CLIENT")
    granted = world.token(agent, client_id, secret, session_id, None)
    assert granted.status_code == 200, granted.text
    again = world.token(agent, client_id, secret, session_id, None)
    assert (again.status_code, again.json()["code"]) == (400, "SESSION_NOT_FOUND")

    # A session that redirected to the agent needs the code it carried.
    url, redirected, _ = world.start(agent, client_id, ["orders:read"])
    query = world.consent(url)
    missing = world.token(agent, client_id, secret, redirected, None)
    assert (missing.status_code, missing.json()["code"]) == (400, "INVALID_REQUEST")
    assert world.token(agent, client_id, secret, redirected, query["code"]).status_code == 200


def test_scopes_under_review_are_listed_as_pending(world: World) -> None:
    agent = world.new_agent("reviewed")
    response = world.register(agent, ["orders:read", "payments", "admin"])
    assert response.status_code == 201, response.text
    (shop,) = response.json()["approved_providers"]
    assert shop["approved_scopes"] == ["orders:read"]
    assert shop["pending_scopes"] == ["payments"]
    assert "payments" not in shop["denied_scopes"] and "admin" in shop["denied_scopes"]
