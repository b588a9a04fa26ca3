"""``ATHAPITool`` against a live native service (real consent, real tokens)."""

from __future__ import annotations

import json

from pydantic import BaseModel

from athkit.agent import (
    AsyncATHClient,
    ATHClient,
    authorize_interactive,
    generate_key,
    serve_identity,
)
from athkit.integrations.langchain import ATHAPITool
from tests.integration.agent.conftest import DEVELOPER, PRODUCTS
from tests.integration.mcp.conftest import McpNative


class CartItem(BaseModel):
    """What goes in the cart."""

    p1: int


class NoArgs(BaseModel):
    """No arguments."""


def test_tool_calls_the_api_and_reports_refusals(mcp_native: McpNative) -> None:
    key = generate_key()
    with (
        serve_identity(key, name="LangChain helper", developer=DEVELOPER) as agent_id,
        ATHClient(mcp_native.url, agent_id=agent_id, private_key=key) as client,
    ):
        client.register({mcp_native.app_id: ["products:read", "cart:write"]}, developer=DEVELOPER)
        authorize_interactive(
            client,
            None,
            ["products:read", "cart:write"],
            opener=mcp_native.opener(scopes=["products:read"]),
        )
        products = ATHAPITool(
            name="list_products",
            description="List the shop's products.",
            client=client,
            path="/products",
            args_schema=NoArgs,
        )
        cart = ATHAPITool(
            name="add_to_cart",
            description="Put products in the cart.",
            client=client,
            method="POST",
            path="/cart",
            args_schema=CartItem,
        )
        listed = products.invoke({})
        assert json.loads(listed) == {"products": PRODUCTS}, listed
        # cart:write was unticked by the person: the model is told why, the loop goes on.
        refused = cart.invoke({"p1": 2})
        assert refused.startswith("SCOPE_NOT_APPROVED (HTTP 403)")

        client.revoke()
        gone = products.invoke({})
        assert gone.startswith("NOT_AUTHORIZED") and "authorize first" in gone


async def test_async_tool_uses_the_async_client(mcp_native: McpNative) -> None:
    key = generate_key()
    with (
        serve_identity(key, name="Async LangChain helper", developer=DEVELOPER) as agent_id,
        ATHClient(mcp_native.url, agent_id=agent_id, private_key=key) as client,
    ):
        client.register({mcp_native.app_id: ["products:read"]}, developer=DEVELOPER)
        authorize_interactive(client, None, ["products:read"], opener=mcp_native.opener())
        async with AsyncATHClient(
            mcp_native.url, agent_id=agent_id, private_key=key, store=client.store
        ) as async_client:
            tool = ATHAPITool(
                name="list_products",
                description="List the shop's products.",
                client=client,
                async_client=async_client,
                path="/products",
                args_schema=NoArgs,
            )
            assert json.loads(await tool.ainvoke({})) == {"products": PRODUCTS}
