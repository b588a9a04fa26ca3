"""The shop's ATH-protected ``/api`` over real HTTP, with a real agent holding a real token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from athkit.agent import ATHClient, ATHClientError
from athkit.demo import NativeStack, native_stack
from athkit.demo.shop import SHOP_PROVIDER_ID
from athkit.protocol import generate_private_key
from athkit.testing import drive_consent


@dataclass
class Shop:
    stack: NativeStack
    agent: ATHClient
    client_id: str
    redirect_uri: str

    def consent(self, scopes: list[str], ticked: list[str] | None = None) -> list[str]:
        """ShopBot authorizes, Alice consents (to ``ticked``), ShopBot gets its token."""
        pending = self.agent.authorize(
            SHOP_PROVIDER_ID, scopes, user_redirect_uri=self.redirect_uri
        )
        with httpx.Client(timeout=10) as browser:
            target = drive_consent(
                browser,
                pending.authorization_url,
                username=self.stack.username,
                password=self.stack.password,
                scopes=ticked,
                stop_at=self.redirect_uri,
            )
        assert isinstance(target, str)
        code = httpx.URL(target).params["code"]
        return list(self.agent.exchange_token(code, pending.ath_session_id).effective_scopes)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.agent.request(method, path, raise_for_ath_error=False, **kwargs)


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    with native_stack() as stack:
        redirect_uri = f"{stack.shopbot_id.rsplit('/.well-known', 1)[0]}/callback"
        with ATHClient(
            stack.shop_url, agent_id=stack.shopbot_id, private_key=stack.shopbot_key
        ) as agent:
            registered = agent.register(
                {SHOP_PROVIDER_ID: ["products:read", "cart:read", "cart:write", "orders:read"]},
                developer={"name": "Tests", "id": "tests"},
                redirect_uris=[redirect_uri],
            )
            assert registered.agent_status == "approved"
            yield Shop(stack, agent, registered.client_id, redirect_uri)


def test_requests_without_a_valid_token_are_refused(shop: Shop) -> None:
    url = f"{shop.stack.shop_url}/api/products"
    missing = httpx.get(url)
    assert (missing.status_code, missing.json()["code"]) == (401, "TOKEN_INVALID")
    forged = httpx.get(url, headers={"Authorization": "Bearer ath_at_not-a-real-token"})
    assert (forged.status_code, forged.json()["code"]) == (401, "TOKEN_INVALID")


def test_cart_rules_reach_the_agent_as_clear_errors(shop: Shop) -> None:
    assert shop.consent(["products:read", "cart:read", "cart:write"]) == [
        "products:read",
        "cart:read",
        "cart:write",
    ]
    product = shop.api("GET", "/products/barista-apron")
    assert product.status_code == 200
    assert product.json()["stock"] == 6
    unknown = shop.api("POST", "/cart/items", json={"product_id": "no-such-thing"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "PRODUCT_NOT_FOUND")
    zero = shop.api("POST", "/cart/items", json={"product_id": "ceramic-mug", "quantity": 0})
    assert (zero.status_code, zero.json()["code"]) == (400, "INVALID_QUANTITY")
    sold_out = shop.api("POST", "/cart/items", json={"product_id": "limited-grinder"})
    assert (sold_out.status_code, sold_out.json()["code"]) == (409, "OUT_OF_STOCK")
    not_json = shop.api(
        "POST", "/cart/items", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["code"]) == (400, "INVALID_REQUEST")
    added = shop.api("POST", "/cart/items", json={"product_id": "ceramic-mug", "quantity": 2})
    assert added.status_code == 201
    assert added.json()["total_cents"] == 2 * 1450
    cart = shop.api("GET", "/cart")
    assert [item["product_id"] for item in cart.json()["items"]] == ["ceramic-mug"]
    removed = shop.api("DELETE", "/cart/items/ceramic-mug")
    assert removed.json()["items"] == []
    # This token has no orders scope at all: reading orders is refused by the scope check.
    orders = shop.api("GET", "/orders")
    assert (orders.status_code, orders.json()["code"]) == (403, "SCOPE_NOT_APPROVED")


def test_a_token_is_bound_to_its_agent(shop: Shop) -> None:
    shop.consent(["products:read"])
    token = shop.agent.token(SHOP_PROVIDER_ID)
    assert token is not None
    stolen = httpx.get(
        f"{shop.stack.shop_url}/api/products",
        headers={
            "Authorization": f"Bearer {token.access_token}",
            "X-ATH-Agent-ID": "http://127.0.0.1:9/.well-known/agent.json",
        },
    )
    assert (stolen.status_code, stolen.json()["code"]) == (403, "AGENT_IDENTITY_MISMATCH")


def test_a_second_registration_and_an_impostor_are_refused(shop: Shop) -> None:
    other = ATHClient(
        shop.stack.shop_url, agent_id=shop.stack.shopbot_id, private_key=generate_private_key()
    )
    with other, pytest.raises(ATHClientError) as info:
        other.register({SHOP_PROVIDER_ID: ["products:read"]}, developer={"name": "x", "id": "x"})
    assert info.value.code == "INVALID_ATTESTATION"
