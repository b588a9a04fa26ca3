"""The MCP server the tests put behind ATH: a few shop tools built with the official ``mcp`` SDK.

``stream_report`` proves that a streamed answer is not buffered: it reports progress once, then
waits until the client says it saw that progress (``RELEASED``), which can only happen if the
progress notification reached the client while the tool was still running.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context

PRODUCTS = [{"id": "p1", "name": "Teapot"}, {"id": "p2", "name": "Kettle"}]
RELEASED = threading.Event()
RELEASE_WAIT = 10.0


def add_shop_tools(server: MCPServer[Any], tool: Any) -> None:
    """Register the shop's tools with ``tool(scope)`` (a decorator factory) on ``server``."""

    @tool("products:read")
    def search_products(query: str = "") -> dict[str, Any]:
        """Search the catalogue."""
        found = [p for p in PRODUCTS if query.lower() in p["name"].lower()]
        return {"products": found}

    @tool("cart:write")
    def add_to_cart(product_id: str, quantity: int = 1) -> dict[str, Any]:
        """Put a product in the cart."""
        return {"added": product_id, "quantity": quantity}

    @tool("orders:write")
    def place_order() -> dict[str, Any]:
        """Place the order."""
        return {"order": "o1"}

    @tool("products:read")
    async def stream_report(ctx: Context) -> str:
        """Report progress, then wait for the client to have seen it."""
        await ctx.report_progress(1, 2, "first half")
        await anyio.to_thread.run_sync(RELEASED.wait, RELEASE_WAIT)
        await ctx.report_progress(2, 2, "done")
        return "released" if RELEASED.is_set() else "not released: progress was held back"

    @server.tool()
    def unlisted_tool() -> str:
        """A tool no scope lists: hidden and refused."""
        return "should never run"
