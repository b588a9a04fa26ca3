"""The public Python SDK (``ath-sdk`` from PyPI, imported as ``ath``) runs its whole flow against
athkit's native ATH Shop and athkit's gateway in front of Example Mail, as a new user would:
discover, register, authorize, consent (Debian's Chromium), token, API call, revoke.

``ath-sdk`` registers and authorizes with ``{server}/ath/callback`` — the server's own callback —
when the developer gives no redirect URI, and never catches the redirect. athkit treats that as
"no redirect": the browser ends on the completion page, whose code the user hands to the agent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from athkit.demo import NativeStack, native_stack
from athkit.demo._stack import GatewayStack, gateway_stack
from athkit.demo.shop import SHOP_PROVIDER_ID
from athkit.protocol import private_key_to_pem
from athkit.testing import drive_consent

ath = pytest.importorskip("ath", reason="ath-sdk is a test dependency (the dev extra)")

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
MAIL = "example-mail"


@pytest.fixture(scope="module")
def shop() -> Iterator[NativeStack]:
    with native_stack() as running:
        yield running


@pytest.fixture(scope="module")
def mail() -> Iterator[GatewayStack]:
    with gateway_stack() as running:
        yield running


def _consent_in_browser(page: Page, url: str, username: str, password: str) -> tuple[str, str]:
    """Alice opens the authorization URL, signs in and allows; returns (code, page URL)."""
    page.goto(url)
    page.locator("input[name=username]").fill(username)
    page.locator("input[type=password]").fill(password)
    page.locator("button[type=submit]").first.click()
    page.locator("button[value=allow]").click()
    page.locator("#ath-code").wait_for()
    assert page.locator("#page-title").inner_text() == "Authorization complete"
    return page.locator("#ath-code").inner_text(), page.url


def _refused(call: Any) -> tuple[str, int | None]:
    with pytest.raises(ath.ATHError) as info:
        call()
    return info.value.code, info.value.status


def test_ath_sdk_native_shop_default_redirect_ends_on_the_completion_page(
    shop: NativeStack, browser_page: Page
) -> None:
    pem = private_key_to_pem(shop.shopbot_key).decode()
    with ath.ATHNativeClient(shop.shop_url, shop.shopbot_id, pem) as client:
        service = client.discover()
        assert service.app_id == SHOP_PROVIDER_ID
        registration = client.register(
            developer={"name": "ShopBot Labs", "id": "shopbot"},
            providers=[
                {"provider_id": SHOP_PROVIDER_ID, "scopes": ["products:read", "orders:write"]}
            ],
            purpose="compare prices",
        )
        (approval,) = registration.approved_providers
        assert approval.approved_scopes == ["products:read"]
        assert registration.agent_status.value == "approved"

        pending = client.authorize(SHOP_PROVIDER_ID, ["products:read"])
        code, landed = _consent_in_browser(
            browser_page, pending.authorization_url, shop.username, shop.password
        )
        # The browser ended on the callback's completion page, not a STATE_MISMATCH.
        assert landed.startswith(f"{shop.shop_url}/ath/callback")
        command = browser_page.locator("#cli-command").inner_text()
        assert f"--session {pending.ath_session_id} --code {code}" in command
        sdk_line = browser_page.locator("#sdk-call").inner_text()
        assert sdk_line == f'client.exchange_token("{code}", "{pending.ath_session_id}")'
        # The copy button puts the code on the clipboard (its script runs under the page's CSP).
        browser_page.context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=shop.shop_url
        )
        browser_page.locator("#copy-code").click()
        browser_page.get_by_text("Copied.").wait_for()
        assert browser_page.evaluate("navigator.clipboard.readText()") == code

        token = client.exchange_token(code, pending.ath_session_id)
        assert token.effective_scopes == ["products:read"]
        assert token.agent_id == shop.shopbot_id
        products = client.api("GET", "/products")
        assert isinstance(products, dict | list) and products

        # Outside the token's scopes; then revoked: the SDK sees athkit's codes and statuses.
        assert _refused(lambda: client.api("POST", "/orders", {"items": []})) == (
            "SCOPE_NOT_APPROVED",
            403,
        )
        client.revoke()
        client.set_token(token.access_token)
        assert _refused(lambda: client.api("GET", "/products")) == ("TOKEN_REVOKED", 401)
        assert _refused(lambda: client.exchange_token(code, pending.ath_session_id)) == (
            "SESSION_NOT_FOUND",
            400,
        )


def test_ath_sdk_through_the_gateway_both_redirect_paths(
    mail: GatewayStack, browser_page: Page
) -> None:
    pem = private_key_to_pem(mail.mailbot_key).decode()
    agent_redirect = "http://127.0.0.1:9/ath-sdk-callback"  # caught below, never fetched
    with ath.ATHGatewayClient(mail.gateway_url, mail.mailbot_id, pem) as client:
        catalog = client.discover()
        assert MAIL in {p.provider_id for p in catalog.supported_providers}
        registration = client.register(
            developer={"name": "MailBot Labs", "id": "mailbot"},
            providers=[{"provider_id": MAIL, "scopes": ["mail:read", "mail:send"]}],
            purpose="summarise the inbox",
            redirect_uris=[f"{mail.gateway_url}/ath/callback", agent_redirect],
        )
        (approval,) = registration.approved_providers
        assert approval.approved_scopes == ["mail:read"]
        # athkit lists what waits for the operator (clients ignore fields they don't know).
        raw = httpx.get(
            f"{mail.gateway_url}/ath/agents/{registration.client_id}",
            auth=(registration.client_id, client._client_secret or ""),
        ).json()
        assert raw["approved_providers"][0]["pending_scopes"] == ["mail:send"]

        # 1. The SDK's default redirect: the completion page in a real browser.
        pending = client.authorize(MAIL, ["mail:read"])
        code, _ = _consent_in_browser(
            browser_page, pending.authorization_url, mail.username, mail.password
        )
        client.exchange_token(code, pending.ath_session_id)
        inbox = client.proxy(MAIL, "GET", "/messages")
        assert inbox and "Lunch on Friday?" in str(inbox)
        client.revoke()
        assert _refused(lambda: client.proxy(MAIL, "GET", "/messages")) == ("NO_TOKEN", None)

        # 2. The agent's own redirect URI: the code and state come back in the redirect.
        pending = client.authorize(MAIL, ["mail:read"], redirect_uri=agent_redirect)
        with httpx.Client(timeout=20) as alice:
            target = drive_consent(
                alice,
                pending.authorization_url,
                username=mail.username,
                password=mail.password,
                stop_at=agent_redirect,
            )
        assert isinstance(target, str) and target.startswith(agent_redirect)
        query = httpx.URL(target).params
        assert re.fullmatch(r"[0-9a-f]{32}", query["state"])  # the SDK's own state came back
        token = client.exchange_token(query["code"], pending.ath_session_id)
        assert token.scope_intersection.effective == ["mail:read"]
        assert _refused(lambda: client.proxy(MAIL, "POST", "/messages", {"to": "bob"})) == (
            "SCOPE_NOT_APPROVED",
            403,
        )
        client.revoke()
        client.set_token(token.access_token)
        assert _refused(lambda: client.proxy(MAIL, "GET", "/messages")) == ("TOKEN_REVOKED", 401)
