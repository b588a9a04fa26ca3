"""The official ``mcp`` SDK client against an ``mcp`` SDK server guarded natively by ATH."""

from __future__ import annotations

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from athkit.integrations.mcp import ath_error, ath_streamable_http
from tests.integration.mcp.conftest import Agent, McpNative


async def test_allowed_refused_and_listed_tools(mcp_native: McpNative, native_agent: Agent) -> None:
    token = await native_agent.auth.ensure_token()
    assert token.effective_scopes == ["products:read"]
    async with Client(ath_streamable_http(mcp_native.mcp_url, native_agent.auth)) as client:
        listed = sorted(t.name for t in (await client.list_tools()).tools)
        assert listed == ["search_products", "stream_report", "whoami"]

        found = await client.call_tool("search_products", {"query": "tea"})
        assert found.structured_content == {"products": [{"id": "p1", "name": "Teapot"}]}

        me = await client.call_tool("whoami", {})
        assert me.structured_content == {
            "agent_id": native_agent.agent_id,
            "user_id": "user-alice",
            "scopes": ["products:read"],
        }

        with pytest.raises(MCPError) as refused:
            await client.call_tool("add_to_cart", {"product_id": "p1"})
        error = ath_error(refused.value)
        assert error is not None and (error.code, error.status) == ("SCOPE_NOT_APPROVED", 403)
        assert error.details["tool"] == "add_to_cart"
        assert error.details["required_scopes"] == ["cart:write"]
