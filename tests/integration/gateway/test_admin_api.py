"""Admin API fixes: bare POSTs act, times are ISO 8601, filters take ISO dates."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.gateway.harness import GatewayWorld, running_gateway_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayWorld]:
    with running_gateway_world(tmp_path_factory.mktemp("gateway-admin")) as running:
        yield running


def _bare_post(world: GatewayWorld, path: str) -> tuple[int, dict[str, object]]:
    # No body and no Content-Type, as `curl -X POST` sends it.
    response = world.admin("POST", path)
    return response.status_code, response.json()


def test_bare_suspend_stops_the_agent_and_bare_deny_denies(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"]})
    token = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    assert world.call(token, agent, "GET", "/mail/messages").status_code == 200

    status, body = _bare_post(world, f"/agents/{registration['client_id']}/suspend")
    assert status == 200, body
    assert body["status"] == "suspended" and body["status_reason"] == "suspended by operator"
    dead = world.call(token, agent, "GET", "/mail/messages")
    assert dead.status_code == 401 and dead.json()["code"] == "TOKEN_REVOKED"

    other = world.new_agent()
    pending = world.register(other, {"mail": ["mail:read", "mail:send"]})
    assert pending["agent_status"] == "pending"
    status, body = _bare_post(world, f"/agents/{pending['client_id']}/deny")
    assert status == 200, body
    assert body["status"] == "denied"
    refused = world.authorize(other, pending["client_id"], "mail", ["mail:read"])
    assert refused.status_code == 403 and refused.json()["code"] == "AGENT_UNAPPROVED"


def _is_iso(value: object) -> bool:
    """An ISO 8601 UTC time within a year of now (not POSIX seconds)."""
    assert isinstance(value, str) and value.endswith("Z"), value
    return abs(datetime.fromisoformat(value).timestamp() - time.time()) < 366 * 86400


def test_times_are_iso_8601_and_filters_take_iso_dates(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"]})
    world.connect(agent, registration, "mail", ["mail:read"])
    shown = world.admin("GET", f"/agents/{registration['client_id']}").json()
    for key in ("created_at", "updated_at", "approval_expires"):
        assert _is_iso(shown[key])
    tokens = world.admin("GET", "/tokens", params={"client_id": registration["client_id"]})
    (token,) = tokens.json()["tokens"]
    assert _is_iso(token["created_at"]) and _is_iso(token["expires_at"])
    assert token["revoked_at"] is None

    today = datetime.now(UTC).date()
    events = world.admin(
        "GET", "/audit", params={"agent_id": agent.agent_id, "since": today.isoformat()}
    ).json()["events"]
    assert {"agent_registered", "access_granted"} <= {e["event"] for e in events}
    assert all(_is_iso(e["timestamp"]) for e in events)
    tomorrow = (today + timedelta(days=1)).isoformat()
    later = world.admin("GET", "/audit", params={"agent_id": agent.agent_id, "since": tomorrow})
    assert later.json()["events"] == []
    until = world.admin(
        "GET",
        "/audit",
        params={"agent_id": agent.agent_id, "until": f"{today.isoformat()}T00:00:00Z"},
    )
    assert until.json()["events"] == []
    bad = world.admin("GET", "/audit", params={"since": "last tuesday"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"
    assert bad.json()["details"]["field"] == "since"
