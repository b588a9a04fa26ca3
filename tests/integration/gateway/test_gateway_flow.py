"""The gateway in front of two providers (each our OAuth server plus an upstream API), all on
127.0.0.1 over real HTTP, with real attestations, real consent and real provider tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.gateway.harness import (
    LIMITED_AGENT,
    USERS,
    GatewayWorld,
    running_gateway_world,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayWorld]:
    with running_gateway_world(tmp_path_factory.mktemp("gateway")) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset_clock(world: GatewayWorld) -> Iterator[None]:
    yield
    world.clock.offset = 0.0


def audit(world: GatewayWorld, **query: str) -> list[dict[str, object]]:
    response = world.admin("GET", "/audit", params={"limit": 100, **query})
    assert response.status_code == 200, response.text
    events: list[dict[str, object]] = response.json()["events"]
    return events


def denied_codes(world: GatewayWorld, agent_id: str, expected: str) -> set[object]:
    """Codes of the agent's audited rejections, once ``expected`` is among them (the proxy
    writes its audit events behind the response)."""
    deadline = time.monotonic() + 5
    while True:
        codes = {e["code"] for e in audit(world, event="access_denied", agent_id=agent_id)}
        if expected in codes or time.monotonic() > deadline:
            return codes
        time.sleep(0.05)


def test_full_flow_through_the_proxy_for_both_providers(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"], "cal": ["cal:read"]})
    assert registration["agent_status"] == "approved"
    mail = world.connect(agent, registration, "mail", ["mail:read"])
    cal = world.connect(agent, registration, "cal", ["cal:read"], user="bob")
    assert mail["effective_scopes"] == ["mail:read"] and mail["provider_id"] == "mail"
    assert cal["effective_scopes"] == ["cal:read"] and cal["provider_id"] == "cal"

    got = world.call(mail["access_token"], agent, "GET", "/mail/messages?folder=inbox")
    assert got.status_code == 200, got.text
    body = got.json()
    # The upstream checked the provider token with its OAuth server: it is alice's.
    assert body["service"] == "mail-api" and body["user"] == USERS["alice"]
    assert body["query"] == "folder=inbox"
    got = world.call(cal["access_token"], agent, "GET", "/cal/messages/9")
    assert got.status_code == 200, got.text
    assert got.json() == {"id": "9", "user": USERS["bob"], "service": "cal-api"}

    # A token for A on B's path.
    wrong = world.call(mail["access_token"], agent, "GET", "/cal/messages")
    assert wrong.status_code == 403 and wrong.json()["code"] == "PROVIDER_MISMATCH"
    # Another agent's identity in X-ATH-Agent-ID.
    other = world.call(
        mail["access_token"], None, "GET", "/mail/messages", agent_id=world.new_agent().agent_id
    )
    assert other.status_code == 403 and other.json()["code"] == "AGENT_IDENTITY_MISMATCH"
    # Outside the token's scopes: 403, audited as scope_violation.
    send = world.call(mail["access_token"], agent, "POST", "/mail/messages", content=b"{}")
    assert send.status_code == 403 and send.json()["code"] == "SCOPE_NOT_APPROVED"
    violations = audit(world, event="scope_violation", agent_id=agent.agent_id)
    assert violations and violations[0]["provider_id"] == "mail"

    # Every response of the flow (agent and browser) is free of provider tokens.
    world.assert_no_provider_token_leaked(world.provider_tokens())


def test_provider_token_is_refreshed_when_it_expires(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"]})
    token = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    before = world.provider_tokens()
    assert world.call(token, agent, "GET", "/mail/messages").status_code == 200
    # mail's access tokens live 300 s: move every server's clock past that.
    world.clock.advance(400)
    after_expiry = world.call(token, agent, "GET", "/mail/messages")
    assert after_expiry.status_code == 200, after_expiry.text
    assert after_expiry.json()["user"] == USERS["alice"]
    after = world.provider_tokens()
    assert after - before, "no new provider token was stored after the refresh"
    world.assert_no_provider_token_leaked(before | after)


def test_pending_agent_is_approved_through_the_admin_api(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read", "mail:send"]})
    assert registration["agent_status"] == "pending"
    refused = world.authorize(agent, registration["client_id"], "mail", ["mail:send"])
    assert refused.status_code == 403 and refused.json()["code"] == "AGENT_UNAPPROVED"

    pending = world.admin("GET", "/agents", params={"status": "pending"}).json()
    assert registration["client_id"] in [a["client_id"] for a in pending["agents"]]
    assert world.admin("GET", "/agents").status_code == 200
    unauthenticated = world.http.get(f"{world.base}/ath/admin/agents")
    assert unauthenticated.status_code == 401
    approved = world.admin("POST", f"/agents/{registration['client_id']}/approve")
    assert approved.status_code == 200, approved.text

    token = world.connect(agent, registration, "mail", ["mail:read", "mail:send"])
    assert sorted(token["effective_scopes"]) == ["mail:read", "mail:send"]
    sent = world.call(
        token["access_token"], agent, "POST", "/mail/messages", content=b'{"to": "bob"}'
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["size"] == len(b'{"to": "bob"}')


def test_suspension_kills_live_tokens(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"], "cal": ["cal:read"]})
    mail = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    cal = world.connect(agent, registration, "cal", ["cal:read"])["access_token"]
    assert world.call(mail, agent, "GET", "/mail/messages").status_code == 200
    suspended = world.admin(
        "POST", f"/agents/{registration['client_id']}/suspend", json={"reason": "compromised"}
    )
    assert suspended.status_code == 200, suspended.text
    for token, path in ((mail, "/mail/messages"), (cal, "/cal/messages")):
        dead = world.call(token, agent, "GET", path)
        assert dead.status_code == 401 and dead.json()["code"] == "TOKEN_REVOKED"
    listed = world.admin("GET", "/tokens", params={"client_id": registration["client_id"]})
    assert listed.status_code == 200 and listed.json()["tokens"] == []


def test_rate_limit_trips_per_agent(world: GatewayWorld) -> None:
    agent = world.new_agent(LIMITED_AGENT)  # rate_limit.agents gives it 3 requests a minute
    registration = world.register(agent, {"mail": ["mail:read"]})
    token = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    codes = [world.call(token, agent, "GET", "/mail/messages").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = world.call(token, agent, "GET", "/mail/messages")
    assert limited.status_code == 429 and limited.json()["code"] == "RATE_LIMITED"
    assert int(limited.headers["retry-after"]) >= 1
    assert "RATE_LIMITED" in denied_codes(world, agent.agent_id, "RATE_LIMITED")
    # Another agent is unaffected.
    other = world.new_agent()
    other_token = world.connect(
        other, world.register(other, {"mail": ["mail:read"]}), "mail", ["mail:read"]
    )["access_token"]
    assert world.call(other_token, other, "GET", "/mail/messages").status_code == 200


def test_catalog_metrics_and_audit_of_proxy_calls(world: GatewayWorld) -> None:
    catalog = world.http.get(f"{world.base}/.well-known/ath.json").json()
    assert catalog["gateway_id"] == "test-gateway"
    providers = {p["provider_id"]: p for p in catalog["supported_providers"]}
    assert providers["mail"]["agent_approval_required"] is True  # mail:send needs review
    assert providers["cal"]["available_scopes"] == ["cal:read", "cal:write"]
    metrics = world.http.get(f"{world.base}/metrics").text
    assert 'outcome="upstream_2xx"' in metrics and 'outcome="PROVIDER_MISMATCH"' in metrics
    assert "athkit_gateway_active_tokens" in metrics
    deadline = time.monotonic() + 5
    while not audit(world, event="proxy_request") and time.monotonic() < deadline:
        time.sleep(0.05)
    event = audit(world, event="proxy_request")[0]
    assert event["details"]["status"] in (200, 201)  # type: ignore[index]
    assert world.http.get(f"{world.base}/readyz").json()["status"] == "ready"


def test_provider_401_after_refresh_needs_the_user_again(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"]})
    token = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    before = world.provider_tokens()
    refused = world.call(token, agent, "GET", "/mail/always-401")
    assert refused.status_code == 502 and refused.json()["code"] == "OAUTH_ERROR"
    assert refused.json()["details"]["reason"] == "user_reauthorization_required"
    assert world.provider_tokens() - before, "the gateway did not refresh before giving up"
    # The grant now needs the user: even a call the upstream would accept is refused.
    again = world.call(token, agent, "GET", "/mail/messages")
    assert again.status_code == 502 and again.json()["code"] == "OAUTH_ERROR"
    assert "authorize" in again.json()["message"]


def test_upstream_slow_is_504_and_down_is_502(world: GatewayWorld, tmp_path: Path) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"], "cal": ["cal:read"]})
    mail = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    cal = world.connect(agent, registration, "cal", ["cal:read"])["access_token"]
    started = time.monotonic()
    slow = world.call(mail, agent, "GET", "/mail/slow")
    assert slow.status_code == 504 and slow.json()["code"] == "UPSTREAM_TIMEOUT"
    assert time.monotonic() - started < 2.9  # the upstream would take 3 s; the limit is 1 s
    # Stop the calendar API (this test runs last in the module).
    world.upstreams["cal"].server.should_exit = True
    deadline = time.monotonic() + 5
    while world.upstreams["cal"].server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    down = world.call(cal, agent, "GET", "/cal/messages")
    assert down.status_code == 502 and down.json()["code"] == "UPSTREAM_UNAVAILABLE"
    codes = denied_codes(world, agent.agent_id, "UPSTREAM_UNAVAILABLE")
    assert {"UPSTREAM_TIMEOUT", "UPSTREAM_UNAVAILABLE"} <= codes
