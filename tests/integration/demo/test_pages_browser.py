"""Every page a person opens in the demo is a page in the project's look, saying what happened
and what to do next: the completion page with its code, the denial page, used and unknown
consent links, an unknown shop page and the OAuth server's address. API clients asking for JSON
at the same URLs keep the ATH JSON error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from athkit.agent import ATHClient
from athkit.demo import NativeStack, native_stack
from athkit.demo.shop import SHOP_PROVIDER_ID
from athkit.protocol import ErrorCode
from tests.screenshots import screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

SCOPES = ["products:read", "cart:write"]
NOT_FOUND = ErrorCode.SESSION_NOT_FOUND.http_status  # the spec's table


@pytest.fixture(scope="module")
def stack() -> Iterator[NativeStack]:
    with native_stack() as running:
        yield running


@pytest.fixture(scope="module")
def shopbot(stack: NativeStack) -> Iterator[ATHClient]:
    with ATHClient(stack.shop_url, agent_id=stack.shopbot_id, private_key=stack.shopbot_key) as c:
        c.register({SHOP_PROVIDER_ID: SCOPES}, developer={"name": "ShopBot Labs", "id": "sb"})
        yield c


def _sign_in(page: Page, stack: NativeStack) -> None:
    page.locator("input[name=username]").fill(stack.username)
    page.locator("input[type=password]").fill(stack.password)
    page.locator("button[type=submit]").first.click()


def _title(page: Page) -> str:
    return page.locator("#page-title").inner_text()


def test_completion_page_then_the_used_link(
    stack: NativeStack, shopbot: ATHClient, browser_page: Page, tmp_path: Path
) -> None:
    page = browser_page
    pending = shopbot.authorize(SHOP_PROVIDER_ID, SCOPES)  # no redirect: the code page
    page.goto(pending.authorization_url)
    _sign_in(page, stack)
    page.locator("#agent-name").wait_for()
    screenshot(page, "consent.png", tmp_path)
    page.locator("button[value=allow]").click()
    assert _title(page) == "Authorization complete"
    assert "You allowed ShopBot access." in page.locator("#page-message").inner_text()
    assert "Give this code to ShopBot" in page.locator("#page-advice").inner_text()
    code = page.locator("#ath-code").inner_text()
    screenshot(page, "completion.png", tmp_path)
    token = shopbot.exchange_token(code, pending.ath_session_id)
    assert set(token.effective_scopes) == set(SCOPES)  # the code on the page is the real one

    response = page.goto(pending.authorization_url)  # the same link, a second time
    assert response is not None and response.status == NOT_FOUND
    assert _title(page) == "This link was already used"
    assert "SESSION_NOT_FOUND" in page.locator("#page-meta").inner_text()
    screenshot(page, "error-used-link.png", tmp_path)
    with httpx.Client(timeout=10) as api:
        answer = api.get(pending.authorization_url, headers={"Accept": "application/json"})
    assert answer.status_code == NOT_FOUND  # the same status as the page
    assert answer.json()["code"] == "SESSION_NOT_FOUND"


def test_denial_page(
    stack: NativeStack, shopbot: ATHClient, browser_page: Page, tmp_path: Path
) -> None:
    page = browser_page
    pending = shopbot.authorize(SHOP_PROVIDER_ID, SCOPES)
    page.goto(pending.authorization_url)
    _sign_in(page, stack)
    page.locator("button[value=deny]").click()
    assert _title(page) == "Access not granted"
    assert "Nothing was shared" in page.locator("#page-advice").inner_text()
    screenshot(page, "denied.png", tmp_path)


def test_unknown_consent_link_shop_page_and_oauth_home(
    stack: NativeStack, browser_page: Page, tmp_path: Path
) -> None:
    page = browser_page
    response = page.goto(f"{stack.shop_url}/ath/consent/not-a-session")
    assert response is not None and response.status == NOT_FOUND
    assert _title(page) == "This link is not valid"
    assert "ask it to connect again" in page.locator("#page-advice").inner_text()
    screenshot(page, "error-unknown-link.png", tmp_path)

    response = page.goto(f"{stack.shop_url}/no-such-page")
    assert response is not None and response.status == 404
    assert _title(page) == "Page not found"
    page.get_by_role("link", name="Back to the shop").click()
    page.get_by_role("link", name="Log in").wait_for()  # the storefront

    response = page.goto(f"{stack.oauth_url}/")
    assert response is not None and response.status == 200
    assert _title(page) == "Sign-in server"
    screenshot(page, "oauth-home.png", tmp_path)
    response = page.goto(f"{stack.oauth_url}/nothing-here")
    assert response is not None and response.status == 404
    assert _title(page) == "Page not found"

    with httpx.Client(timeout=10) as api:  # the same URLs for an API client
        shop = api.get(f"{stack.shop_url}/no-such-page")
        oauth = api.get(f"{stack.oauth_url}/nothing-here", headers={"Accept": "*/*"})
    assert shop.status_code == 404 and shop.json()["code"] == "INVALID_REQUEST"
    assert oauth.status_code == 404 and oauth.json()["error"] == "invalid_request"


def test_other_browser_and_callback_errors(
    stack: NativeStack, shopbot: ATHClient, chromium: Browser, browser_page: Page, tmp_path: Path
) -> None:
    pending = shopbot.authorize(SHOP_PROVIDER_ID, SCOPES)
    browser_page.goto(pending.authorization_url)  # the first browser: bound, sent to sign-in
    browser_page.locator("input[name=username]").wait_for()
    second = chromium.new_context()
    try:
        page = second.new_page()
        response = page.goto(pending.authorization_url)
        assert response is not None and response.status == 400
        assert _title(page) == "This link was opened in another browser"
        assert "Finish in that browser" in page.locator("#page-advice").inner_text()
        screenshot(page, "error-other-browser.png", tmp_path)

        response = page.goto(f"{stack.shop_url}/ath/callback")  # no state at all
        assert response is not None and response.status == 400
        assert _title(page) == "The sign-in did not come back complete"
        response = page.goto(f"{stack.shop_url}/ath/callback?state=forged&code=x")
        assert response is not None and response.status == 400
        assert _title(page) == "The sign-in did not match your request"
        assert "STATE_MISMATCH" in page.locator("#page-meta").inner_text()
    finally:
        second.close()
