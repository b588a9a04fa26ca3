"""The ATH Shop mounts the operator console with one call; ath console create-user makes the
account; the operator reviews ShopBot's pending scope and approves it."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from athkit.agent import ATHClient
from athkit.cli import app as cli_app
from athkit.demo import native_stack
from athkit.demo.shop import SHOP_PROVIDER_ID
from tests.integration.console.helpers import csrf_of, sign_in


def test_operator_approves_shopbot_in_the_shop_console() -> None:
    with native_stack() as stack:
        database = f"sqlite:///{stack.workdir / 'shop.db'}"
        created = CliRunner().invoke(
            cli_app,
            [
                "console",
                "create-user",
                "shop-ops",
                "--database-url",
                database,
                "--base-url",
                stack.shop_url,
                "--password-stdin",
            ],
            input="the shop operator passphrase\n",
        )
        assert created.exit_code == 0, created.output
        listed = CliRunner().invoke(
            cli_app,
            ["console", "list-users", "--database-url", database, "--base-url", stack.shop_url],
        )
        assert listed.output.split() == ["shop-ops"]
        with ATHClient(
            stack.shop_url, agent_id=stack.shopbot_id, private_key=stack.shopbot_key
        ) as agent:
            registered = agent.register(
                {SHOP_PROVIDER_ID: ["products:read", "orders:write"]},
                developer={"name": "ShopBot Labs", "id": "shopbot-labs"},
            )
            client_id = registered.client_id
            with httpx.Client(timeout=10) as http:
                assert http.get(f"{stack.shop_url}/admin/").status_code == 303
                signed = sign_in(http, stack.shop_url, "shop-ops", "the shop operator passphrase")
                assert signed.status_code == 303
                review = http.get(f"{stack.shop_url}/admin/review").text
                assert "orders:write" in review and "ATH Shop" in review
                token = csrf_of(http, f"{stack.shop_url}/admin/review")
                approved = http.post(
                    f"{stack.shop_url}/admin/agents/{client_id}/approve", data={"csrf": token}
                )
                assert approved.status_code == 303
            status = agent.status()
        provider = next(p for p in status.approved_providers if p.provider_id == SHOP_PROVIDER_ID)
        assert sorted(provider.approved_scopes) == ["orders:write", "products:read"]
