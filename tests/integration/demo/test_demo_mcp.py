"""``ath demo --mcp``: ShopBot as an MCP client of the shop's tools behind ATH."""

from __future__ import annotations

import io
import json

from typer.testing import CliRunner

from athkit.cli import app
from athkit.demo import DemoOptions, run_demo


def test_mcp_story_measures_every_outcome() -> None:
    out = io.StringIO()
    summary = run_demo(DemoOptions(json=True, mcp=True), out)
    steps = {
        o["step"]: o
        for o in map(json.loads, out.getvalue().splitlines())
        if o.get("type") == "step"
    }
    assert summary.ok, [s for s in steps.values() if not s["ok"]]
    assert summary.mode == "mcp"
    # tools/list showed only what the token allows.
    assert steps["mcp_tools"]["details"] == {
        "listed": ["add_to_cart", "search_products"],
        "hidden": ["place_order", "view_cart"],
    }
    assert steps["mcp_place_order"]["code"] == "SCOPE_NOT_APPROVED"
    assert steps["mcp_place_order"]["details"]["required_scopes"] == ["orders:write"]
    assert steps["mcp_after_revocation"]["code"] == "TOKEN_REVOKED"
    rows = {r.scenario: r for r in summary.rows}
    never = rows["Known agent calls a tool the shop never approved"]
    assert (never.result, never.code, never.service_approved) == (
        "blocked",
        "SCOPE_NOT_APPROVED",
        False,
    )
    assert rows["Known agent, user approves"].result == "access"


def test_mcp_and_gateway_together_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["demo", "--mcp", "--gateway"])
    assert result.exit_code == 2
    assert "choose --gateway or --mcp" in result.output
