"""The shop's Connected agents page tells an agent holding a live token from one whose token is
gone (revoked by the agent itself here): the latter shows "no active token", not its scopes."""

from __future__ import annotations

import httpx

from athkit.agent import ATHClient
from athkit.demo import native_stack
from athkit.demo.shop import SHOP_PROVIDER_ID
from athkit.testing import drive_consent


def _agents_page(shop: str, username: str, password: str) -> str:
    with httpx.Client(timeout=10) as alice:
        page = drive_consent(
            alice, f"{shop}/login?next=/account/agents", username=username, password=password
        )
    assert not isinstance(page, str) and page.status_code == 200
    return page.text


def test_an_agent_without_a_live_token_says_so() -> None:
    with native_stack() as stack:
        redirect_uri = f"{stack.shopbot_id.rsplit('/.well-known', 1)[0]}/callback"
        with ATHClient(
            stack.shop_url, agent_id=stack.shopbot_id, private_key=stack.shopbot_key
        ) as agent:
            agent.register(
                {SHOP_PROVIDER_ID: ["products:read"]},
                developer={"name": "ShopBot Labs", "id": "shopbot-labs"},
                redirect_uris=[redirect_uri],
            )
            pending = agent.authorize(
                SHOP_PROVIDER_ID, ["products:read"], user_redirect_uri=redirect_uri
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
            live = _agents_page(stack.shop_url, stack.username, stack.password)
            assert "ShopBot" in live and "products:read" in live and "no active token" not in live
            agent.revoke()
            gone = _agents_page(stack.shop_url, stack.username, stack.password)
    assert "ShopBot" in gone and "no active token" in gone
    assert '<span class="scope">products:read</span>' not in gone
