"""``ath demo`` run as a real subprocess; every step checked from its JSON line, not its prose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SHOP_SCOPES_AFTER_CONSENT = ["products:read", "cart:write", "orders:read"]


def run_demo_json(*extra: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run ``ath demo --json`` and split its output into step objects and the summary."""
    proc = subprocess.run(
        [sys.executable, "-c", "from athkit.cli import main; main()", "demo", "--json", *extra],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "COLUMNS": "100"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert lines[0]["type"] == "start"
    assert lines[-1]["type"] == "summary"
    steps = [line for line in lines if line["type"] == "step"]
    return steps, lines[-1]


@pytest.fixture(scope="module")
def native_run() -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    steps, summary = run_demo_json()
    by_name = {step["step"]: step for step in steps}
    assert len(by_name) == len(steps), "each step name appears once"
    return by_name, summary


def test_every_step_behaved_and_the_summary_says_so(
    native_run: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    steps, summary = native_run
    assert [name for name, step in steps.items() if not step["ok"]] == []
    assert summary["ok"] is True
    assert summary["mode"] == "native"
    assert summary["failed_steps"] == []
    assert summary["elapsed_seconds"] < 60


def test_registration_approves_browsing_and_sends_ordering_to_review(
    native_run: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    steps, _ = native_run
    registration = steps["registration"]
    assert registration["outcome"] == "approved"
    assert registration["scopes"] == ["products:read", "cart:read", "cart:write", "orders:read"]
    assert registration["details"]["review_scopes"] == ["orders:write"]


def test_consent_and_token_show_the_intersection(
    native_run: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    steps, _ = native_run
    assert steps["consent"]["outcome"] == "allowed"
    assert steps["consent"]["details"]["consent_page_named_agent"] is True
    assert "cart:read" not in steps["consent"]["scopes"]
    token = steps["token"]
    assert token["scopes"] == SHOP_SCOPES_AFTER_CONSENT
    assert "cart:read" in token["details"]["agent_approved"]
    assert "cart:read" not in token["details"]["user_consented"]
    assert token["details"]["effective"] == SHOP_SCOPES_AFTER_CONSENT


def test_api_calls_follow_the_token_scopes(
    native_run: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    steps, _ = native_run
    assert steps["browse"]["outcome"] == "ok"
    assert steps["browse"]["details"]["products"] == 12
    assert steps["add_to_cart"]["outcome"] == "ok"
    assert (steps["read_cart"]["outcome"], steps["read_cart"]["code"]) == (
        "refused",
        "SCOPE_NOT_APPROVED",
    )
    refused = steps["order_refused"]
    assert (refused["outcome"], refused["code"]) == ("refused", "SCOPE_NOT_APPROVED")
    assert refused["details"]["reason"] == "awaiting operator review"


def test_after_the_operator_approves_the_order_goes_through(
    native_run: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    steps, _ = native_run
    assert "orders:write" in steps["operator_approves"]["scopes"]
    assert "orders:write" in steps["token_again"]["scopes"]
    assert "cart:read" not in steps["token_again"]["scopes"]
    placed = steps["order_placed"]
    assert placed["outcome"] == "placed"
    assert placed["details"]["order_id"]
    assert placed["details"]["stock_after"] == placed["details"]["stock_before"] - 1


def test_revocation_and_the_three_outcomes_of_the_table(
    native_run: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    steps, summary = native_run
    assert steps["user_revokes"]["outcome"] == "revoked"
    assert steps["after_revocation"]["code"] == "TOKEN_REVOKED"
    rows = {row["step"]: row for row in summary["rows"]}
    assert rows["token"]["result"] == "access"
    assert rows["token"]["effective_scopes"] == SHOP_SCOPES_AFTER_CONSENT
    assert (rows["token"]["user_consents"], rows["token"]["service_approved"]) == (True, True)
    for step, code in (
        ("unregistered_agent", "AGENT_NOT_REGISTERED"),
        ("impostor_agent", "INVALID_ATTESTATION"),
    ):
        assert steps[step]["code"] == code
        assert (rows[step]["result"], rows[step]["code"]) == ("blocked", code)
        assert (rows[step]["user_consents"], rows[step]["service_approved"]) == (True, False)
    declined = rows["user_declines"]
    assert (declined["result"], declined["code"]) == ("no access", "USER_DENIED")
    assert (declined["user_consents"], declined["service_approved"]) == (False, True)
    assert steps["user_declines"]["code"] == "USER_DENIED"


@pytest.fixture(scope="module")
def gateway_run() -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    steps, summary = run_demo_json("--gateway")
    by_name = {step["step"]: step for step in steps}
    assert len(by_name) == len(steps), "each step name appears once"
    return by_name, summary


def test_gateway_mode_tells_the_same_story(
    gateway_run: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    steps, summary = gateway_run
    assert [name for name, step in steps.items() if not step["ok"]] == []
    assert (summary["ok"], summary["mode"]) == (True, "gateway")
    assert steps["discovery"]["scopes"] == ["mail:read", "mail:send", "mail:delete"]
    registration = steps["registration"]
    assert registration["outcome"] == "approved"
    assert registration["details"]["review_scopes"] == ["mail:send"]
    assert steps["token"]["scopes"] == ["mail:read"]
    assert steps["token"]["details"]["agent_approved"] == ["mail:read", "mail:delete"]
    assert steps["read_inbox"]["details"]["messages"] == 3
    assert steps["delete_refused"]["code"] == "SCOPE_NOT_APPROVED"
    assert steps["send_refused"]["code"] == "SCOPE_NOT_APPROVED"
    assert steps["send_refused"]["details"]["reason"] == "awaiting operator review"
    assert steps["token_again"]["scopes"] == ["mail:read", "mail:send"]
    # The upstream's own answer, passed through unchanged: the new message's id.
    assert steps["send_mail"]["outcome"] == "sent"
    assert steps["send_mail"]["details"]["message_id"]
    assert steps["user_revokes"]["details"]["tokens_revoked"] >= 1
    assert steps["after_revocation"]["code"] == "TOKEN_REVOKED"
    rows = {row["step"]: row for row in summary["rows"]}
    assert (rows["token"]["result"], rows["token"]["effective_scopes"]) == (
        "access",
        ["mail:read"],
    )
    assert rows["unregistered_agent"]["code"] == "AGENT_NOT_REGISTERED"
    assert rows["impostor_agent"]["code"] == "INVALID_ATTESTATION"
    assert rows["user_declines"]["code"] == "USER_DENIED"


def test_the_readme_excerpt_shows_what_the_demo_measures(
    native_run: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    steps, summary = native_run
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    excerpt = readme[: readme.index("## Running the tests")]
    for row in summary["rows"]:
        if row["code"]:
            assert row["code"] in excerpt
    token = steps["token"]["details"]
    assert f"← effective      : {', '.join(token['effective'])}" in excerpt
    assert f"← user consented : {', '.join(token['user_consented'])}" in excerpt
    assert f"← agent approved : {', '.join(token['agent_approved'])}" in excerpt
