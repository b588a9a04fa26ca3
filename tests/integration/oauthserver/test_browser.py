"""The login and consent pages in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from athkit.protocol import create_consent_context
from tests.integration.oauthserver.conftest import PASSWORD, OAuthEnv

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

pytestmark = pytest.mark.browser


def _catch_callback(page: Page, oauth: OAuthEnv) -> list[str]:
    """Answer the client's redirect_uri inside the browser and remember the URL it got."""
    seen: list[str] = []

    def handle(route: Route) -> None:
        seen.append(route.request.url)
        route.fulfill(
            status=200, content_type="text/html", body="<p id=done>back at the client</p>"
        )

    page.route(f"{oauth.redirect_uri}*", handle)
    return seen


def _log_in(page: Page) -> None:
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Allow access?")


def _code(seen: list[str]) -> str:
    assert len(seen) == 1, seen
    query = parse_qs(urlsplit(seen[0]).query)
    assert query["state"] == ["state-123"]
    return query["code"][0]


def test_login_untick_a_scope_and_allow(browser_page: Page, oauth: OAuthEnv) -> None:
    page = browser_page
    seen = _catch_callback(page, oauth)
    page.goto(oauth.authorize_url())
    assert page.locator("h1").inner_text() == "Sign in"
    _log_in(page)
    assert page.is_checked("input[value='orders:write']")
    page.uncheck("input[value='orders:write']")
    page.click("button[value=allow]")
    page.wait_for_selector("#done")
    with httpx.Client() as http:
        token = oauth.exchange(http, _code(seen))
    assert token.status_code == 200
    assert token.json()["scope"] == "orders:read profile"


def test_agent_aware_consent_page(browser_page: Page, oauth: OAuthEnv) -> None:
    page = browser_page
    seen = _catch_callback(page, oauth)
    context = create_consent_context(
        oauth.context_key,
        client_id=oauth.client_id,
        audience=oauth.url,
        code_challenge=oauth.challenge,
        agent_id="https://helper.example/.well-known/agent.json",
        agent_name="Shopping Helper",
        developer={"name": "Acme Agents", "id": "acme"},
        approved_scopes=["orders:read", "profile"],
    )
    page.goto(oauth.authorize_url(ath_context=context))
    _log_in(page)
    assert page.locator("#agent-name").inner_text() == "Shopping Helper"
    assert "Acme Agents" in page.locator("#agent-developer").inner_text()
    write = page.locator("input[value='orders:write']")
    assert write.is_disabled()
    assert not write.is_checked()
    row = page.locator("li", has=write)
    assert "unavailable" in row.inner_text()
    assert page.locator("input[value='orders:read']").is_enabled()
    page.click("button[value=allow]")
    page.wait_for_selector("#done")
    with httpx.Client() as http:
        token = oauth.exchange(http, _code(seen))
    assert token.json()["scope"] == "orders:read profile"


def test_deny_in_the_browser(browser_page: Page, oauth: OAuthEnv) -> None:
    page = browser_page
    seen = _catch_callback(page, oauth)
    page.goto(oauth.authorize_url())
    _log_in(page)
    page.click("button[value=deny]")
    page.wait_for_selector("#done")
    assert "error=access_denied" in seen[0]
