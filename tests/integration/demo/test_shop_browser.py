"""A person in Chromium logs into the shop, finds ShopBot on Connected agents and revokes it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from athkit.agent import ATHClient, ATHClientError
from athkit.demo import NativeStack, native_stack
from athkit.demo.shop import SHOP_PROVIDER_ID
from athkit.testing import drive_consent

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


@pytest.fixture
def shop_with_agent() -> Iterator[tuple[NativeStack, ATHClient]]:
    """The demo's servers, and ShopBot holding a token Alice consented to."""
    with native_stack() as stack:
        redirect_uri = f"{stack.shopbot_id.rsplit('/.well-known', 1)[0]}/callback"
        with ATHClient(
            stack.shop_url, agent_id=stack.shopbot_id, private_key=stack.shopbot_key
        ) as agent:
            agent.register(
                {SHOP_PROVIDER_ID: ["products:read", "cart:write"]},
                developer={"name": "ShopBot Labs", "id": "shopbot-labs"},
                redirect_uris=[redirect_uri],
            )
            pending = agent.authorize(
                SHOP_PROVIDER_ID, ["products:read", "cart:write"], user_redirect_uri=redirect_uri
            )
            with httpx.Client(timeout=10) as alice:
                target = drive_consent(
                    alice,
                    pending.authorization_url,
                    username=stack.username,
                    password=stack.password,
                    stop_at=redirect_uri,
                )
            assert isinstance(target, str)
            agent.exchange_token(httpx.URL(target).params["code"], pending.ath_session_id)
            assert agent.request("GET", "/products").status_code == 200
            yield stack, agent


def test_alice_revokes_shopbot_in_a_real_browser(
    shop_with_agent: tuple[NativeStack, ATHClient], browser_page: Page
) -> None:
    stack, agent = shop_with_agent
    page = browser_page
    page.goto(f"{stack.shop_url}/")
    page.get_by_role("link", name="Log in").click()
    # The shop's own OAuth server: log in, then allow the shop to know who Alice is.
    page.locator("input[type=password]").wait_for()
    page.locator("input[name=username]").fill(stack.username)
    page.locator("input[type=password]").fill(stack.password)
    page.locator("button[type=submit], input[type=submit]").first.click()
    page.locator("button[value=allow]").click()
    page.get_by_role("link", name="Connected agents").click()
    row = page.locator("#connected-agents tr", has_text="ShopBot")
    assert row.count() == 1
    assert "products:read" in row.inner_text()
    assert "cart:write" in row.inner_text()
    assert "UTC" in row.inner_text()  # since when
    row.get_by_role("button", name="Revoke").click()
    page.get_by_text("Access revoked").wait_for()
    assert page.locator("#connected-agents").count() == 0
    assert "No agent holds access" in page.content()
    with pytest.raises(ATHClientError) as info:
        agent.request("GET", "/products")
    assert info.value.code == "TOKEN_REVOKED"
