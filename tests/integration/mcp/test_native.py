"""The official ``mcp`` SDK client against an ``mcp`` SDK server guarded natively by ATH."""

from __future__ import annotations

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from athkit.integrations.mcp import ath_error, ath_streamable_http
from athkit.protocol import ErrorCode
from tests.integration.mcp.conftest import Agent, McpNative, open_as_impostor


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


async def test_streamed_result_arrives_while_the_tool_runs(
    mcp_native: McpNative, native_agent: Agent
) -> None:
    from tests.integration.mcp.tools import RELEASED

    RELEASED.clear()
    seen: list[str | None] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(message)
        RELEASED.set()  # the tool waits for this: only an unbuffered stream can deliver it

    await native_agent.auth.ensure_token()
    async with Client(ath_streamable_http(mcp_native.mcp_url, native_agent.auth)) as client:
        result = await client.call_tool("stream_report", {}, progress_callback=progress)
    assert result.structured_content == {"result": "released"}
    assert seen[0] == "first half"


async def _revoke_behind_the_agents_back(mcp_native: McpNative, agent: Agent) -> None:
    """Revoke the stored token as the user's "Connected agents" page would: the agent keeps
    its copy and learns of the revocation only from the next call."""
    client = agent.client
    creds = client.store.get_client(client.base_url, client.agent_id)
    token = client.token(mcp_native.app_id)
    assert creds is not None and token is not None
    async with httpx.AsyncClient() as http:
        revoked = await http.post(
            f"{mcp_native.url}/ath/revoke",
            json={
                "token": token.access_token,
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
            },
        )
    assert revoked.status_code == 200


async def test_revoked_token_mid_session_asks_to_authorize_again(
    mcp_native: McpNative, native_agent: Agent
) -> None:
    auth = native_agent.auth
    first = await auth.ensure_token()
    async with Client(ath_streamable_http(mcp_native.mcp_url, auth)) as client:
        assert (await client.call_tool("search_products", {})).is_error is False
        await _revoke_behind_the_agents_back(mcp_native, native_agent)
        with pytest.raises(MCPError) as refused:
            await client.call_tool("search_products", {})
    error = ath_error(refused.value)
    assert error is not None and (error.code, error.status) == ("TOKEN_REVOKED", 401)
    assert "authorize the agent again" in error.message
    assert auth.last_refusal is not None and auth.last_refusal.code == "TOKEN_REVOKED"
    # The dead token is never sent again: the next ensure_token() drops it and asks the person.
    assert native_agent.client.token(mcp_native.app_id) == first

    # Authorizing again (the person consents once more) gives a working session.
    second = await auth.ensure_token()
    assert second.access_token != first.access_token
    assert native_agent.client.token(mcp_native.app_id) == second
    async with Client(ath_streamable_http(mcp_native.mcp_url, auth)) as client:
        assert (await client.call_tool("search_products", {})).is_error is False


async def test_wrong_agent_header_and_missing_token_are_refused(
    mcp_native: McpNative, native_agent: Agent
) -> None:
    token = await native_agent.auth.ensure_token()
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as http:
        wrong = await http.post(
            mcp_native.mcp_url,
            json=call,
            headers={
                **headers,
                "Authorization": f"Bearer {token.access_token}",
                "X-ATH-Agent-ID": "https://impostor.example/.well-known/agent.json",
            },
        )
        missing = await http.post(mcp_native.mcp_url, json=call, headers=headers)
        no_agent = await http.post(
            mcp_native.mcp_url,
            json=call,
            headers={**headers, "Authorization": f"Bearer {token.access_token}"},
        )
    for response, code in (
        (wrong, "AGENT_IDENTITY_MISMATCH"),
        (missing, "TOKEN_INVALID"),
        (no_agent, "AGENT_IDENTITY_MISMATCH"),
    ):
        body = response.json()
        # ATH §7's table: 401 for token failures, 403 for AGENT_IDENTITY_MISMATCH.
        assert response.status_code == ErrorCode(code).http_status, body
        assert body["id"] == 7 and body["error"]["data"]["code"] == code
        assert body["error"]["message"].startswith(code)


async def test_unlisted_tool_is_hidden_and_refused(
    mcp_native: McpNative, native_agent: Agent
) -> None:
    await native_agent.auth.ensure_token()
    async with Client(ath_streamable_http(mcp_native.mcp_url, native_agent.auth)) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("unlisted_tool", {})
    error = ath_error(refused.value)
    assert error is not None and error.code == "SCOPE_NOT_APPROVED"
    assert error.details["required_scopes"] == []


async def test_sdk_client_claiming_another_agent_is_refused(
    mcp_native: McpNative, native_agent: Agent
) -> None:
    await native_agent.auth.ensure_token()
    failure = await open_as_impostor(mcp_native.mcp_url, native_agent.auth)
    error = ath_error(failure)
    assert error is not None, repr(failure)
    assert (error.code, error.status) == ("AGENT_IDENTITY_MISMATCH", 403)


async def test_legacy_session_knows_the_caller(mcp_native: McpNative, native_agent: Agent) -> None:
    """A pre-2026 client (initialize, session id, event stream): every message is still checked
    against the token, and a tool still sees who is calling."""
    await native_agent.auth.ensure_token()
    transport = ath_streamable_http(mcp_native.mcp_url, native_agent.auth)
    async with Client(transport, mode="legacy") as client:
        assert client.session.protocol_version < "2026"
        listed = sorted(t.name for t in (await client.list_tools()).tools)
        assert listed == ["search_products", "stream_report", "whoami"]
        me = await client.call_tool("whoami", {})
        assert me.structured_content is not None
        assert me.structured_content["agent_id"] == native_agent.agent_id
        with pytest.raises(MCPError) as refused:
            await client.call_tool("add_to_cart", {"product_id": "p1"})
    error = ath_error(refused.value)
    assert error is not None and error.code == "SCOPE_NOT_APPROVED"


async def test_prompts_and_resources_are_scoped_too(
    mcp_native: McpNative, native_agent: Agent
) -> None:
    await native_agent.auth.ensure_token()  # products:read only
    async with Client(ath_streamable_http(mcp_native.mcp_url, native_agent.auth)) as client:
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        assert prompts == ["shopping_list"]
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        assert resources == ["shop://products/p1"]
        page = await client.read_resource("shop://products/p1")
        assert getattr(page.contents[0], "text", None) == "Teapot"
        with pytest.raises(MCPError) as order:
            await client.read_resource("shop://orders/o1")
        with pytest.raises(MCPError) as notes:
            await client.get_prompt("staff_notes")
    refused = ath_error(order.value)
    assert refused is not None and refused.code == "SCOPE_NOT_APPROVED"
    assert refused.details["required_scopes"] == ["orders:write"]
    hidden = ath_error(notes.value)
    assert hidden is not None and hidden.details["prompt"] == "staff_notes"
