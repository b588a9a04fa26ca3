"""The gateway's reading of MCP messages and rewriting of listings, without a network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from athkit.gateway._mcp import McpGate, McpUpstreamConfig
from athkit.protocol import ATHError

GATE = McpGate.from_config(
    McpUpstreamConfig(
        tools={"products:read": ["search_products"], "cart:write": ["add_to_cart"]},
        max_message_bytes=256,
    )
)


def _receiver(*chunks: bytes) -> Any:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


async def test_a_call_is_read_and_checked_by_tool() -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add_to_cart"}}
    ).encode()
    call = await GATE.read(_receiver(body[:10], body[10:]))
    assert (call.request_id, call.method, str(call.target)) == (3, "tools/call", "add_to_cart")
    refusal = GATE.check(call, ("products:read",))
    assert refusal is not None and refusal.code.value == "SCOPE_NOT_APPROVED"
    assert refusal.details["required_scopes"] == ["cart:write"]
    assert GATE.check(call, ("cart:write",)) is None and call.scope == "cart:write"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', 400),  # a batch
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}}', 400),  # no name
        (b'{"jsonrpc": "2.0", "id": 1, "method": 5}', 400),
        (b"{" + b" " * 300 + b"}", 413),
    ],
)
async def test_bad_messages_are_refused(body: bytes, status: int) -> None:
    with pytest.raises(ATHError) as refused:
        await GATE.read(_receiver(body))
    assert (refused.value.code.value, refused.value.status) == ("INVALID_REQUEST", status)


async def test_listing_is_filtered_in_json_and_in_an_event_stream() -> None:
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
    call = await GATE.read(_receiver(body))
    answer = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"tools": [{"name": "search_products"}, {"name": "add_to_cart"}]},
    }
    kept = json.loads(
        GATE.filter_body(call, json.dumps(answer).encode(), "application/json", ("products:read",))
    )
    assert kept["result"]["tools"] == [{"name": "search_products"}]

    stream = (
        b"event: message\r\nid: e1\r\ndata: "
        + json.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}).encode()
        + b"\r\n\r\nevent: message\r\ndata: "
        + json.dumps(answer).encode()
        + b"\r\n\r\n"
    )
    rewritten = GATE.filter_body(call, stream, "text/event-stream", ("cart:write",)).decode()
    events = [e for e in rewritten.split("\n\n") if e]
    assert events[0].startswith("event: message\nid: e1\ndata: ")  # passed on as it was
    last = json.loads(events[1].split("data: ", 1)[1])
    assert last["result"]["tools"] == [{"name": "add_to_cart"}]
