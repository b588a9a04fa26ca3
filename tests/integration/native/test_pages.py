"""The native service's browser endpoints (consent link, callback) and unknown addresses answer
a person's browser with a page and an API client with the ATH JSON error, with the same status,
and the rejection is audited either way."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.native.harness import LocalAgent, World

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture(scope="module")
def approved(world: World) -> tuple[LocalAgent, str, str]:
    agent = world.new_agent("pages")
    client_id, secret = world.registered(agent)
    return agent, client_id, secret


def _page(response: httpx.Response, status: int, title: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert f'<h1 id="page-title">{title}</h1>' in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    return response.text


def test_expired_consent_link(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, _ = approved
    url, _, _ = world.start(agent, client_id, ["orders:read"])
    world.clock.advance(601)
    text = _page(world.http.get(url, headers=BROWSER), 400, "This link has expired")
    assert "SESSION_EXPIRED" in text and "ask it to connect again" in text
    world.assert_audited("SESSION_EXPIRED")
    as_json = world.http.get(url, headers={"Accept": "application/json"})
    assert as_json.status_code == 400 and as_json.json()["code"] == "SESSION_EXPIRED"


def test_callback_errors(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    callback = f"{world.base}/ath/callback"
    _page(world.http.get(callback, headers=BROWSER), 400, "The sign-in did not come back complete")
    world.assert_audited("STATE_MISMATCH")
    forged = world.http.get(callback, params={"state": "forged", "code": "x"}, headers=BROWSER)
    _page(forged, 400, "The sign-in did not match your request")
    plain = world.http.get(callback, params={"state": "forged", "code": "x"})  # Accept: */*
    assert plain.status_code == 400 and plain.json()["code"] == "STATE_MISMATCH"


def test_other_browser_is_told_to_finish_in_the_first(
    world: World, approved: tuple[LocalAgent, str, str]
) -> None:
    agent, client_id, _ = approved
    url, _, _ = world.start(agent, client_id, ["orders:read"])
    with httpx.Client(timeout=10) as first, httpx.Client(timeout=10) as second:
        assert first.get(url).status_code == 302  # binds the first browser
        text = _page(
            second.get(url, headers=BROWSER), 400, "This link was opened in another browser"
        )
        assert "Finish in that browser" in text


def test_unknown_address_and_wrong_method(world: World) -> None:
    _page(world.http.get(f"{world.base}/nothing/here", headers=BROWSER), 404, "Page not found")
    _page(
        world.http.get(f"{world.base}/ath/token", headers=BROWSER),
        405,
        "This page cannot be used that way",
    )
    api = world.http.get(f"{world.base}/nothing/here")
    assert api.status_code == 404 and api.json()["code"] == "INVALID_REQUEST"
