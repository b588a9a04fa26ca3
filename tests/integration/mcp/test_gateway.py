"""The official ``mcp`` SDK client against an ``mcp`` SDK server (with its own OAuth check)
through the ATH gateway: per-tool scopes, filtered listings, streaming, revocation, audit."""

from __future__ import annotations

import anyio
import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from athkit.integrations.mcp import ath_error, ath_streamable_http
from athkit.server import AuditQuery
from tests.integration.mcp.conftest import Agent, McpGateway, open_as_impostor


async def _events(gateway: McpGateway, agent_id: str, event: str) -> list[dict[str, object]]:
    found = await gateway.stores.audit.query(AuditQuery(agent_id=agent_id, event=event))
    return [dict(e.details) for e in found]


async def test_tools_through_the_gateway(mcp_gateway: McpGateway, gateway_agent: Agent) -> None:
    token = await gateway_agent.auth.ensure_token()
    assert token.effective_scopes == ["products:read"]
    async with Client(ath_streamable_http(mcp_gateway.mcp_url, gateway_agent.auth)) as client:
        # Only what products:read allows; not cart, orders, nor the tool no scope lists.
        listed = sorted(t.name for t in (await client.list_tools()).tools)
        assert listed == ["search_products", "stream_report"]

        found = await client.call_tool("search_products", {"query": "pot"})
        assert found.structured_content == {"products": [{"id": "p1", "name": "Teapot"}]}

        with pytest.raises(MCPError) as refused:
            await client.call_tool("add_to_cart", {"product_id": "p1"})
        error = ath_error(refused.value)
        assert error is not None and (error.code, error.status) == ("SCOPE_NOT_APPROVED", 403)
        assert error.details["tool"] == "add_to_cart"

        # orders:write was never approved by the shop: no token can hold it.
        with pytest.raises(MCPError) as never:
            await client.call_tool("place_order", {})
        error = ath_error(never.value)
        assert error is not None and error.details["required_scopes"] == ["orders:write"]

    # proxy_request events are written behind the response: wait for them (bounded).
    for _ in range(50):
        calls = await _events(mcp_gateway, gateway_agent.agent_id, "proxy_request")
        if any(c.get("tool") == "search_products" for c in calls):
            break
        await anyio.sleep(0.1)
    assert any(
        c.get("mcp_method") == "tools/call" and c.get("tool") == "search_products" for c in calls
    )
    assert any(c.get("mcp_method") == "tools/list" for c in calls)
    violations = await _events(mcp_gateway, gateway_agent.agent_id, "scope_violation")
    assert sorted(str(v["tool"]) for v in violations) == ["add_to_cart", "place_order"]


async def test_streamed_result_passes_unbuffered(
    mcp_gateway: McpGateway, gateway_agent: Agent
) -> None:
    from tests.integration.mcp.tools import RELEASED

    RELEASED.clear()
    seen: list[str | None] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(message)
        RELEASED.set()

    await gateway_agent.auth.ensure_token()
    async with Client(ath_streamable_http(mcp_gateway.mcp_url, gateway_agent.auth)) as client:
        result = await client.call_tool("stream_report", {}, progress_callback=progress)
    assert result.structured_content == {"result": "released"}
    assert seen[0] == "first half"


async def test_revoked_token_mid_session(mcp_gateway: McpGateway, gateway_agent: Agent) -> None:
    auth = gateway_agent.auth
    token = await auth.ensure_token()
    client_creds = gateway_agent.client.store.get_client(
        gateway_agent.client.base_url, gateway_agent.agent_id
    )
    assert client_creds is not None
    async with Client(ath_streamable_http(mcp_gateway.mcp_url, auth)) as client:
        assert (await client.call_tool("search_products", {})).is_error is False
        async with httpx.AsyncClient() as http:
            revoked = await http.post(
                f"{mcp_gateway.url}/ath/revoke",
                json={
                    "token": token.access_token,
                    "client_id": client_creds.client_id,
                    "client_secret": client_creds.client_secret,
                },
            )
        assert revoked.status_code == 200
        with pytest.raises(MCPError) as refused:
            await client.call_tool("search_products", {})
    error = ath_error(refused.value)
    assert error is not None and (error.code, error.status) == ("TOKEN_REVOKED", 401)
    assert "authorize the agent again" in error.message
    assert auth.last_refusal is not None and auth.last_refusal.code == "TOKEN_REVOKED"


async def test_wrong_agent_and_provider_are_refused(
    mcp_gateway: McpGateway, gateway_agent: Agent
) -> None:
    token = await gateway_agent.auth.ensure_token()
    call = {"jsonrpc": "2.0", "id": "a1", "method": "tools/list", "params": {}}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token.access_token}",
    }
    async with httpx.AsyncClient() as http:
        wrong = await http.post(
            mcp_gateway.mcp_url,
            json=call,
            headers={**headers, "X-ATH-Agent-ID": "https://impostor.example/agent.json"},
        )
        batch = await http.post(
            mcp_gateway.mcp_url,
            json=[call],
            headers={**headers, "X-ATH-Agent-ID": gateway_agent.agent_id},
        )
    body = wrong.json()
    assert wrong.status_code == 403
    assert body["id"] == "a1" and body["error"]["data"]["code"] == "AGENT_IDENTITY_MISMATCH"
    assert batch.status_code == 400
    assert batch.json()["error"]["data"]["code"] == "INVALID_REQUEST"


async def test_sdk_client_claiming_another_agent_is_refused(
    mcp_gateway: McpGateway, gateway_agent: Agent
) -> None:
    await gateway_agent.auth.ensure_token()
    failure = await open_as_impostor(mcp_gateway.mcp_url, gateway_agent.auth)
    error = ath_error(failure)
    assert error is not None, repr(failure)
    assert (error.code, error.status) == ("AGENT_IDENTITY_MISMATCH", 403)


async def test_legacy_session_with_its_event_stream(
    mcp_gateway: McpGateway, gateway_agent: Agent
) -> None:
    """A pre-2026 client: initialize, a session id, the GET event stream and DELETE at the end
    all pass through the gateway with the token checked on each."""
    from tests.integration.mcp.tools import RELEASED

    RELEASED.clear()

    async def progress(done: float, total: float | None, message: str | None) -> None:
        RELEASED.set()

    await gateway_agent.auth.ensure_token()
    transport = ath_streamable_http(mcp_gateway.mcp_url, gateway_agent.auth)
    async with Client(transport, mode="legacy") as client:
        assert client.session.protocol_version < "2026"
        listed = sorted(t.name for t in (await client.list_tools()).tools)
        assert listed == ["search_products", "stream_report"]
        result = await client.call_tool("stream_report", {}, progress_callback=progress)
        assert result.structured_content == {"result": "released"}
        with pytest.raises(MCPError) as refused:
            await client.call_tool("add_to_cart", {"product_id": "p1"})
    error = ath_error(refused.value)
    assert error is not None and error.code == "SCOPE_NOT_APPROVED"
    for _ in range(50):
        calls = await _events(mcp_gateway, gateway_agent.agent_id, "proxy_request")
        if {c.get("method") for c in calls} >= {"POST", "GET", "DELETE"}:
            break
        await anyio.sleep(0.1)
    assert {c.get("method") for c in calls} >= {"POST", "GET", "DELETE"}


async def test_ath_mcp_bridge_in_gateway_mode(
    mcp_gateway: McpGateway, gateway_agent: Agent
) -> None:
    """The bridge behind `ath mcp`, in process, with a gateway provider: its routes go through
    the proxy and its MCP tools through the gateway's MCP endpoint."""
    from athkit.integrations.mcp._bridge import Bridge, RouteTool, build_server

    await gateway_agent.auth.ensure_token()
    bridge = Bridge(
        gateway_agent.client,
        provider_id=mcp_gateway.app_id,
        routes=[RouteTool.parse("add_to_cart POST /cart cart:write")],
        mcp_path="/mcp",
    )
    async with Client(build_server(bridge)) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        assert names == ["ath_authorize", "ath_status", "search_products", "stream_report"]
        found = await client.call_tool("search_products", {"query": "kettle"})
        assert found.structured_content == {"products": [{"id": "p2", "name": "Kettle"}]}
        refused = await client.call_tool("add_to_cart", {"body": {}})
        text = "".join(getattr(b, "text", "") for b in refused.content)
        assert refused.is_error and text.startswith("SCOPE_NOT_APPROVED")
        status = await client.call_tool("ath_status", {})
        assert '"mode": "gateway"' in "".join(getattr(b, "text", "") for b in status.content)


async def test_ath_mcp_bridge_with_the_service_down(gateway_agent: Agent) -> None:
    from athkit.agent import AsyncATHClient, generate_key
    from athkit.integrations.mcp._bridge import Bridge, build_server
    from athkit.testing import free_port

    async with AsyncATHClient(
        f"http://127.0.0.1:{free_port()}",
        agent_id=gateway_agent.agent_id,
        private_key=generate_key(),
    ) as down:
        bridge = Bridge(down, provider_id=None, mcp_path="/mcp")
        async with Client(build_server(bridge)) as client:
            names = sorted(t.name for t in (await client.list_tools()).tools)
            assert names == ["ath_authorize", "ath_status"]
            answer = await client.call_tool("ath_authorize", {"scopes": ["x"]})
            text = "".join(getattr(b, "text", "") for b in answer.content)
            assert answer.is_error and text.startswith("NETWORK_ERROR")


async def test_expired_token_mid_session(mcp_gateway: McpGateway, gateway_agent: Agent) -> None:
    import time

    from athkit.protocol import hash_secret

    auth = gateway_agent.auth
    token = await auth.ensure_token()
    async with Client(ath_streamable_http(mcp_gateway.mcp_url, auth)) as client:
        assert (await client.call_tool("search_products", {})).is_error is False
        # An hour passes for this token (its record says so; the store is the authority).
        record = mcp_gateway.stores.tokens._by_hash[hash_secret(token.access_token)]
        record.expires_at = time.time() - 1
        with pytest.raises(MCPError) as refused:
            await client.call_tool("search_products", {})
    error = ath_error(refused.value)
    assert error is not None and (error.code, error.status) == ("TOKEN_EXPIRED", 401)
    assert error.message.startswith("the ATH token expired; the person must authorize")
