"""A native service's /ath/check: a proxy forwarding the service's API asks it about each call.

The decision must be the one the service's own guard (``ATHScopeMiddleware`` on ``/api/m``)
takes for the same call; allowed calls learn who is calling.
"""

from __future__ import annotations

import httpx

from tests.integration.native.harness import World
from tests.integration.native.service import ServiceConfig

SECRET = ServiceConfig.__dataclass_fields__["forward_auth_secret"].default


def check(
    world: World,
    token: str | None,
    agent_id: str | None,
    method: str,
    path: str,
    *,
    secret: str | None = SECRET,
) -> httpx.Response:
    headers = {"X-Original-URI": path, "X-Original-Method": method}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if agent_id is not None:
        headers["X-ATH-Agent-ID"] = agent_id
    if secret is not None:
        headers["X-ATH-Check-Secret"] = secret
    return world.http.get(f"{world.base}/ath/check", headers=headers)


def guard(
    world: World, token: str | None, agent_id: str | None, method: str, path: str
) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if agent_id is not None:
        headers["X-ATH-Agent-ID"] = agent_id
    return world.http.request(method, f"{world.base}{path}", headers=headers)


def test_allowed_call_names_the_caller(world: World) -> None:
    agent = world.new_agent()
    client_id, secret = world.registered(agent)
    token = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
    allowed = check(world, token, agent.agent_id, "GET", "/api/m/orders")
    assert allowed.status_code == 200 and allowed.content == b""
    assert allowed.headers["x-ath-agent-id"] == agent.agent_id
    assert allowed.headers["x-ath-client-id"] == client_id
    assert (
        allowed.headers["x-ath-user-id"]
        == guard(world, token, agent.agent_id, "GET", "/api/m/orders").json()["user"]
    )
    assert allowed.headers["x-ath-scopes"] == "orders:read"


def test_refusals_are_the_guards(world: World) -> None:
    agent = world.new_agent()
    client_id, secret = world.registered(agent)
    token = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
    stranger = world.new_agent().agent_id
    cases = [
        (None, agent.agent_id, "GET", "/api/m/orders", "TOKEN_INVALID"),
        ("ath_at_unknown", agent.agent_id, "GET", "/api/m/orders", "TOKEN_INVALID"),
        (token, None, "GET", "/api/m/orders", "AGENT_IDENTITY_MISMATCH"),
        (token, stranger, "GET", "/api/m/orders", "AGENT_IDENTITY_MISMATCH"),
        (token, agent.agent_id, "POST", "/api/m/orders", "SCOPE_NOT_APPROVED"),
    ]
    for tok, agent_id, method, path, code in cases:
        decided = check(world, tok, agent_id, method, path)
        guarded = guard(world, tok, agent_id, method, path)
        assert decided.status_code == guarded.status_code, (code, decided.text, guarded.text)
        assert decided.json() == guarded.json() and decided.json()["code"] == code
        assert decided.headers.get("www-authenticate") == guarded.headers.get("www-authenticate")
        assert decided.headers["x-ath-error"] == decided.text
    revoked = world.http.post(
        f"{world.base}/ath/revoke",
        json={"token": token, "client_id": client_id, "client_secret": secret},
    )
    assert revoked.status_code == 200
    dead = check(world, token, agent.agent_id, "GET", "/api/m/orders")
    assert dead.status_code == 401 and dead.json()["code"] == "TOKEN_REVOKED"


def test_only_the_proxy_with_the_secret_is_answered(world: World) -> None:
    agent = world.new_agent()
    client_id, secret = world.registered(agent)
    token = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
    for wrong in (None, "x" * 43):
        refused = check(world, token, agent.agent_id, "GET", "/api/m/orders", secret=wrong)
        assert refused.status_code == 401 and refused.json()["code"] == "INVALID_CLIENT"
        assert "x-ath-user-id" not in refused.headers
    world.assert_audited("INVALID_CLIENT", "access_denied")
    # Envoy's form: the original path after /ath/check, the method kept.
    envoy = world.http.post(
        f"{world.base}/ath/check/api/m/orders",
        headers={
            "Authorization": f"Bearer {token}",
            "X-ATH-Agent-ID": agent.agent_id,
            "X-ATH-Check-Secret": SECRET,
        },
    )
    assert envoy.status_code == 403 and envoy.json()["code"] == "SCOPE_NOT_APPROVED"
