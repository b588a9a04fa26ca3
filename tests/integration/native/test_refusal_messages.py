"""What an agent is told: an unknown scope is told apart from an unapproved one, and a token the
server refused (revoked here) is marked in the agent's store so ``ath token`` can say so."""

from __future__ import annotations

import httpx
import pytest

from athkit.agent import ATHClient, ATHClientError, MemoryCredentialStore
from athkit.demo import native_stack
from athkit.demo.shop import SHOP_PROVIDER_ID
from athkit.testing import drive_consent
from tests.integration.native.harness import World


def test_unknown_scope_is_told_apart(world: World) -> None:
    agent = world.new_agent("typo")
    client_id, _ = world.registered(agent)
    answer = world.authorize(agent, client_id, ["orders:raed"])
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["code"] == "SCOPE_NOT_APPROVED"
    assert "offers no scope orders:raed" in body["message"]
    assert body["details"]["unknown_scopes"] == ["orders:raed"]


def test_a_revoked_token_is_marked_in_the_store() -> None:
    with native_stack() as stack:
        redirect_uri = f"{stack.shopbot_id.rsplit('/.well-known', 1)[0]}/callback"
        store = MemoryCredentialStore()
        with ATHClient(
            stack.shop_url, agent_id=stack.shopbot_id, private_key=stack.shopbot_key, store=store
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
            assert agent.request("GET", "/products").status_code == 200
            held = store.get_token(stack.shop_url, stack.shopbot_id, SHOP_PROVIDER_ID)
            assert held is not None and held.refused is None
            admin = {"Authorization": f"Bearer {stack.admin_token}"}
            tokens = httpx.get(f"{stack.shop_url}/ath/admin/tokens", headers=admin).json()
            for item in tokens["tokens"]:
                httpx.post(
                    f"{stack.shop_url}/ath/admin/tokens/{item['token_id']}/revoke", headers=admin
                ).raise_for_status()
            with pytest.raises(ATHClientError) as refused:
                agent.request("GET", "/products")
            assert refused.value.code == "TOKEN_REVOKED"
            held = store.get_token(stack.shop_url, stack.shopbot_id, SHOP_PROVIDER_ID)
            assert held is not None and held.refused == "TOKEN_REVOKED"
