"""The scope → MCP tools/prompts/resources map and the JSON-RPC form of an ATH refusal."""

from __future__ import annotations

import pytest

from athkit.protocol import (
    JSONRPC_ATH_ERROR,
    ATHError,
    ErrorCode,
    McpScopeMap,
    McpTarget,
    jsonrpc_ath_error,
    parse_target,
    target_of,
)

MAP = McpScopeMap.from_config(
    {
        "products:read": ["search_products", "prompt:shopping_list", "resource:shop://products/*"],
        "cart:write": ["add_to_cart"],
    }
)


def test_targets_are_tools_prompts_and_resources() -> None:
    assert parse_target("search") == McpTarget("tool", "search")
    assert parse_target("prompt:p") == McpTarget("prompt", "p")
    assert parse_target("resource:shop://a/b") == McpTarget("resource", "shop://a/b")
    for bad in ("", "prompt:", "two words"):
        with pytest.raises(ValueError):
            parse_target(bad)
    with pytest.raises(ValueError):
        McpScopeMap.from_config({"s": "search"})  # a string, not a list


def test_only_a_listed_name_is_allowed() -> None:
    assert MAP.allowed(McpTarget("tool", "search_products"), ["products:read"])
    assert not MAP.allowed(McpTarget("tool", "add_to_cart"), ["products:read"])
    assert not MAP.allowed(McpTarget("tool", "unknown"), ["products:read", "cart:write"])
    # A tool and a prompt of the same name are different things.
    assert not MAP.allowed(McpTarget("prompt", "search_products"), ["products:read"])
    assert MAP.allowed(McpTarget("resource", "shop://products/p1"), ["products:read"])
    assert not MAP.allowed(McpTarget("resource", "shop://orders/o1"), ["products:read"])
    assert MAP.scopes_allowing(McpTarget("tool", "add_to_cart")) == ["cart:write"]


def test_target_of_reads_the_named_params() -> None:
    assert target_of("tools/call", {"name": "x", "arguments": {}}) == McpTarget("tool", "x")
    assert target_of("resources/read", {"uri": "shop://a"}) == McpTarget("resource", "shop://a")
    assert target_of("tools/list", {}) is None
    assert target_of("ping", None) is None
    with pytest.raises(ValueError):
        target_of("tools/call", {"arguments": {}})


def test_listings_keep_only_allowed_entries() -> None:
    result = {
        "tools": [{"name": "search_products"}, {"name": "add_to_cart"}, {"nameless": 1}],
        "nextCursor": "c",
    }
    filtered = MAP.filter_listing("tools/list", result, ["products:read"])
    assert filtered == {"tools": [{"name": "search_products"}], "nextCursor": "c"}
    resources = {"resources": [{"uri": "shop://products/1"}, {"uri": "shop://orders/1"}]}
    assert MAP.filter_listing("resources/list", resources, ["products:read"]) == {
        "resources": [{"uri": "shop://products/1"}]
    }
    assert MAP.filter_listing("ping", {"x": 1}, []) == {"x": 1}


def test_refusal_as_jsonrpc_error_carries_the_ath_body() -> None:
    exc = ATHError(ErrorCode.SCOPE_NOT_APPROVED, "no", details={"tool": "t"})
    message = jsonrpc_ath_error(exc, 5)
    assert message["id"] == 5 and message["error"]["code"] == JSONRPC_ATH_ERROR
    assert message["error"]["message"] == "SCOPE_NOT_APPROVED: no"
    assert message["error"]["data"] == {
        "code": "SCOPE_NOT_APPROVED",
        "message": "no",
        "details": {"tool": "t"},
        "status": 403,
    }
