"""The ATH Shop's tools as an MCP server (official ``mcp`` SDK), guarded by ATH.

    search_products   products:read   the catalogue, filtered by a word
    view_cart         cart:read       the caller's cart
    add_to_cart       cart:write      put a product in the cart
    place_order       orders:write    the cart becomes an order, recorded as placed by the agent

Served at ``/mcp`` when ``ShopConfig.mcp_endpoint`` is on (``ath demo --mcp``); needs the ``mcp``
extra. The user is the one the ATH token was issued for, as on ``/api``.
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer

from athkit.demo.shop._service import ShopService
from athkit.integrations.mcp import ATHMcp, ath_caller


def shop_tools(service: ShopService) -> ATHMcp:
    """The shop's MCP server with one scope per tool."""
    server: MCPServer[Any] = MCPServer(
        "ATH Shop tools",
        instructions="Browse the ATH Shop, fill the cart and place orders for the signed-in user.",
        log_level="WARNING",  # the SDK configures the root logger; keep the demo's output clean
    )
    ath = ATHMcp(server)

    @ath.tool("products:read")
    async def search_products(query: str = "") -> dict[str, Any]:
        """Products whose name or description contains ``query`` (all when empty)."""
        word = query.strip().lower()
        found = [
            p.to_dict()
            for p in await service.list_products()
            if word in p.name.lower() or word in p.description.lower()
        ]
        return {"products": found}

    @ath.tool("cart:read")
    async def view_cart() -> dict[str, Any]:
        """The user's cart."""
        return (await service.get_cart(ath_caller().user_id)).to_dict()

    @ath.tool("cart:write")
    async def add_to_cart(product_id: str, quantity: int = 1) -> dict[str, Any]:
        """Put ``quantity`` of a product in the user's cart; returns the cart."""
        return (await service.add_to_cart(ath_caller().user_id, product_id, quantity)).to_dict()

    @ath.tool("orders:write")
    async def place_order() -> dict[str, Any]:
        """Turn the cart into an order, placed by the calling agent."""
        caller = ath_caller()
        return (await service.place_order(caller.user_id, caller.agent_id)).to_dict()

    return ath
