"""``ath demo --mcp``: ShopBot is an MCP client; the ATH Shop serves its tools as an MCP server
behind ATH. The handshake is the native story's; the API calls are MCP tool calls made with the
official ``mcp`` SDK over streamable HTTP, each one checked against the token's scopes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mcp import Client
from mcp.shared.exceptions import MCPError

from athkit.agent import AsyncATHClient, ATHClientError
from athkit.demo._native import PRODUCT, NativeStory
from athkit.demo._report import Step
from athkit.demo._stack import NativeStack
from athkit.demo._story import Story, scopes_text
from athkit.demo.shop import SHOP_PROVIDER_ID, SHOP_SCOPES
from athkit.integrations.mcp import ATHAuth, ath_error, ath_streamable_http

T = TypeVar("T")

#: The shop's tools and the scope each needs (as the shop's MCP server maps them).
SHOP_TOOLS = {
    "search_products": "products:read",
    "view_cart": "cart:read",
    "add_to_cart": "cart:write",
    "place_order": "orders:write",
}


class McpStory(NativeStory):
    """The native story, told through MCP tool calls."""

    def __init__(self, stack: NativeStack, story: Story, *, browser: bool = False) -> None:
        super().__init__(stack, story, browser=browser)
        self.mcp_url = f"{stack.shop_url}/mcp"

    def run(self) -> None:
        """Every step, in order; each records what it measured."""
        _, token = self.first_handshake(
            list(SHOP_SCOPES),
            purpose="Keeps your pantry stocked",
            why="The shop checked ShopBot's signature with its published key; its policy "
            "approves browsing and the cart at once, but a person must review placing orders.",
            title="Authorization: ShopBot asks Alice for access",
            consent_title=f"Consent: Alice logs in and unticks {self.untick}",
        )
        if token is None:
            return
        self.tools_listed(list(token.effective_scopes))
        self.tool_call(
            "mcp_search",
            "ShopBot calls search_products (products:read)",
            "search_products",
            {"query": "grinder"},
        )
        self.tool_call(
            "mcp_add_to_cart",
            "ShopBot calls add_to_cart (cart:write)",
            "add_to_cart",
            {"product_id": PRODUCT, "quantity": 1},
        )
        self.tool_refused(
            "mcp_view_cart",
            f"ShopBot calls view_cart: Alice unticked {self.untick}",
            "view_cart",
            why="The shop approved cart:read, but Alice did not consent: not in the token.",
        )
        self.tool_refused(
            "mcp_place_order",
            "ShopBot calls place_order: the shop never approved it",
            "place_order",
            why="Placing orders waits for the shop's operator; no consent can grant a scope "
            "the shop has not approved, so the tool is refused whatever the person says.",
            row=True,
        )
        self.user_revokes(held=tuple(token.effective_scopes))
        self.tool_after_revocation()
        self.attacks("products:read")

    # --- MCP over streamable HTTP, with the official SDK -----------------------------------

    def _with_mcp(self, work: Callable[[Client], Awaitable[T]]) -> T:
        """Open an MCP session to the shop with ShopBot's ATH token and run ``work`` in it."""

        async def session() -> T:
            async with AsyncATHClient(
                self.cast.base_url,
                agent_id=self.cast.agent_id,
                private_key=self.cast.agent_key,
                mode="native",
                store=self.agent.store,  # the token the handshake stored
            ) as agent:
                auth = ATHAuth(agent, SHOP_PROVIDER_ID)
                async with Client(ath_streamable_http(self.mcp_url, auth)) as client:
                    return await work(client)

        return asyncio.run(session())

    def _call(self, tool: str, arguments: dict[str, Any]) -> tuple[Any, ATHClientError | None]:
        async def work(client: Client) -> tuple[Any, ATHClientError | None]:
            # Caught inside the session: leaving it by an exception would wrap that exception
            # in the transport's task-group error.
            try:
                return await client.call_tool(tool, arguments), None
            except MCPError as exc:
                refusal = ath_error(exc)
                if refusal is None:
                    raise
                return None, refusal

        try:
            return self._with_mcp(work)
        except ATHClientError as exc:
            return None, exc
        except BaseExceptionGroup as group:  # the session could not even open
            refusal = ath_error(group)
            if refusal is None:
                raise
            return None, refusal

    def tools_listed(self, scopes: list[str]) -> None:
        """tools/list shows only the tools the token allows."""

        async def work(client: Client) -> list[str]:
            return sorted(t.name for t in (await client.list_tools()).tools)

        listed = self._with_mcp(work)
        expected = sorted(t for t, s in SHOP_TOOLS.items() if s in scopes)
        hidden = sorted(set(SHOP_TOOLS) - set(listed))
        self.story.record(
            Step(
                step="mcp_tools",
                title="ShopBot connects over MCP and lists the shop's tools",
                ok=listed == expected,
                outcome="listed",
                scopes=scopes,
                details={"listed": listed, "hidden": hidden},
                sent=[
                    f"POST {self.mcp_url}  tools/list  (official mcp SDK, streamable HTTP; "
                    "Authorization: Bearer <ATH token>, X-ATH-Agent-ID)"
                ],
                received=[f"tools: {', '.join(listed)}", f"hidden: {', '.join(hidden)}"],
                why="The shop's MCP server answers tools/list with only the tools whose scope "
                f"is in the token ({scopes_text(scopes)}).",
            )
        )

    def tool_call(self, step: str, title: str, tool: str, arguments: dict[str, Any]) -> None:
        """A tool the token allows."""
        result, refusal = self._call(tool, arguments)
        ok = result is not None and not result.is_error
        content = result.structured_content if ok else None
        summary = _summary(tool, content) if ok else str(refusal or "tool error")
        self.story.record(
            Step(
                step=step,
                title=title,
                ok=ok,
                outcome="ok" if ok else "refused",
                code=refusal.code if refusal else None,
                sent=[f"tools/call {tool} {arguments}"],
                received=[summary],
            )
        )

    def tool_refused(
        self, step: str, title: str, tool: str, *, why: str, row: bool = False
    ) -> None:
        """A tool outside the token: a JSON-RPC error carrying SCOPE_NOT_APPROVED."""
        result, refusal = self._call(tool, {})
        code = refusal.code if refusal else None
        self.story.record(
            Step(
                step=step,
                title=title,
                ok=code == "SCOPE_NOT_APPROVED",
                outcome="refused" if refusal else "allowed",
                code=code,
                details=dict(refusal.details) if refusal else {},
                sent=[f"tools/call {tool}"],
                received=[f"JSON-RPC error -32003 {refusal}" if refusal else f"answered: {result}"],
                why=why,
            )
        )
        if row:
            self.table_row(
                step,
                "Known agent calls a tool the shop never approved",
                "blocked" if refusal else "access",
                code,
            )

    def tool_after_revocation(self) -> None:
        """The tool call that worked a moment ago: TOKEN_REVOKED, authorize again."""
        _, refusal = self._call("search_products", {"query": "grinder"})
        code = refusal.code if refusal else None
        self.story.record(
            Step(
                step="mcp_after_revocation",
                title="ShopBot's next tool call",
                ok=code == "TOKEN_REVOKED",
                outcome="refused" if refusal else "allowed",
                code=code,
                sent=["tools/call search_products  (the token that worked a moment ago)"],
                received=[str(refusal) if refusal else "answered"],
                why="Every MCP request is checked against the token store; the client is told "
                "to ask the person again.",
            )
        )


def _summary(tool: str, content: Any) -> str:
    if not isinstance(content, dict):
        return "answered"
    if tool == "search_products":
        names = [p.get("name") for p in content.get("products", [])]
        return f"{len(names)} product(s): {', '.join(str(n) for n in names)}"
    if tool == "add_to_cart":
        items = content.get("items", [])
        return f"the cart holds {sum(int(i.get('quantity', 0)) for i in items)} item(s)"
    return "answered"
