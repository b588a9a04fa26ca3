"""Every rejection of ATH §4 over real HTTP: the right code and status, and an audit event."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import httpx
import pytest

from tests.integration.native.harness import REDIRECT, LocalAgent, World


def _err(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body: dict[str, object] = response.json()
    assert body["code"] == code, body
    return body


@pytest.fixture(scope="module")
def approved(world: World) -> tuple[LocalAgent, str, str]:
    agent = world.new_agent("main")
    client_id, secret = world.registered(agent)
    return agent, client_id, secret


# --- attestation ------------------------------------------------------------------------------


def test_replayed_jti(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, _ = approved
    attestation = agent.attest(world.base, world.clock)
    assert world.authorize(agent, client_id, ["orders:read"], attestation=attestation).is_success
    again = world.authorize(agent, client_id, ["orders:read"], attestation=attestation)
    _err(again, 401, "INVALID_ATTESTATION")
    world.assert_audited("INVALID_ATTESTATION", "attestation_failed", agent_id=agent.agent_id)


def test_expired_attestation(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, _ = approved
    old = agent.attest(
        world.base, world.clock, now=world.clock.now() - 400, lifetime=timedelta(seconds=60)
    )
    _err(
        world.authorize(agent, client_id, ["orders:read"], attestation=old),
        401,
        "INVALID_ATTESTATION",
    )
    assert world.assert_audited("INVALID_ATTESTATION", "attestation_failed")["reason"] == (
        "expired"
    )


def test_wrong_audience_at_every_endpoint(
    world: World, approved: tuple[LocalAgent, str, str]
) -> None:
    agent, client_id, secret = approved
    # register: the base URL, not the token endpoint
    fresh = world.new_agent("aud")
    wrong = fresh.attest(world.token_endpoint, world.clock)
    _err(world.register(fresh, ["orders:read"], attestation=wrong), 401, "INVALID_ATTESTATION")
    assert world.assert_audited("INVALID_ATTESTATION")["reason"] == "wrong_audience"
    # authorize: the base URL, not /ath/authorize
    wrong = agent.attest(f"{world.base}/ath/authorize", world.clock)
    _err(
        world.authorize(agent, client_id, ["orders:read"], attestation=wrong),
        401,
        "INVALID_ATTESTATION",
    )
    assert world.assert_audited("INVALID_ATTESTATION")["reason"] == "wrong_audience"
    # token: the token endpoint, not the base URL
    url, session_id, _ = world.start(agent, client_id, ["orders:read"])
    code = world.consent(url)["code"]
    wrong = agent.attest(world.base, world.clock)
    _err(
        world.token(agent, client_id, secret, session_id, code, attestation=wrong),
        401,
        "INVALID_ATTESTATION",
    )
    assert world.assert_audited("INVALID_ATTESTATION")["reason"] == "wrong_audience"
    # status: the base URL
    wrong = agent.attest(world.token_endpoint, world.clock)
    response = world.http.get(
        f"{world.base}/ath/agents/{client_id}", headers={"X-ATH-Attestation": wrong}
    )
    _err(response, 401, "INVALID_ATTESTATION")
    ok = world.http.get(
        f"{world.base}/ath/agents/{client_id}",
        headers={"X-ATH-Attestation": agent.attest(world.base, world.clock)},
    )
    assert ok.status_code == 200 and ok.json()["client_id"] == client_id


def test_sub_not_matching_the_client(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, secret = approved
    other = world.new_agent("other")
    world.registered(other)
    # authorize with our client_id but another agent's (valid) attestation
    _err(
        world.authorize(
            agent, client_id, ["orders:read"], attestation=other.attest(world.base, world.clock)
        ),
        403,
        "AGENT_IDENTITY_MISMATCH",
    )
    world.assert_audited("AGENT_IDENTITY_MISMATCH", "attestation_failed")
    # token exchange signed by another agent
    url, session_id, _ = world.start(agent, client_id, ["orders:read"])
    code = world.consent(url)["code"]
    _err(
        world.token(
            agent,
            client_id,
            secret,
            session_id,
            code,
            attestation=other.attest(world.token_endpoint, world.clock),
        ),
        403,
        "AGENT_IDENTITY_MISMATCH",
    )
    # registration whose attestation is for a different agent_id
    fresh = world.new_agent("fresh")
    _err(
        world.register(fresh, ["orders:read"], attestation=other.attest(world.base, world.clock)),
        403,
        "AGENT_IDENTITY_MISMATCH",
    )


def test_ssrf_target_refused_before_any_connection(world: World) -> None:
    agent = world.new_agent("ssrf")
    agent.agent_id = "http://169.254.169.254/latest/agent.json"  # cloud metadata address
    _err(world.register(agent, ["orders:read"]), 401, "INVALID_ATTESTATION")
    world.assert_audited("INVALID_ATTESTATION", "attestation_failed")


def test_duplicate_registration(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, _, _ = approved
    _err(world.register(agent, ["orders:read"]), 409, "AGENT_ALREADY_REGISTERED")
    world.assert_audited("AGENT_ALREADY_REGISTERED", "agent_registration_denied")


# --- Phase A: registration and approval -------------------------------------------------------


def test_unregistered_agent(world: World) -> None:
    agent = world.new_agent("stranger")
    _err(world.authorize(agent, "ath_ci_unknown", ["orders:read"]), 403, "AGENT_NOT_REGISTERED")
    world.assert_audited("AGENT_NOT_REGISTERED", "access_denied")


def test_pending_agent_then_operator_approval(world: World) -> None:
    agent = world.new_agent("pay")
    response = world.register(agent, ["orders:read", "payments"])
    assert response.status_code == 201
    assert response.json()["agent_status"] == "pending"
    client_id = response.json()["client_id"]
    _err(world.authorize(agent, client_id, ["orders:read"]), 403, "AGENT_UNAPPROVED")
    world.assert_audited("AGENT_UNAPPROVED", "access_denied", agent_id=agent.agent_id)
    pending = world.admin("GET", "/agents", params={"status": "pending"}).json()["agents"]
    assert client_id in [a["client_id"] for a in pending]
    approved = world.admin("POST", f"/agents/{client_id}/approve")
    assert approved.json()["status"] == "approved"
    assert world.authorize(agent, client_id, ["payments"]).status_code == 200


def test_provider_not_approved(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, _ = approved
    _err(
        world.authorize(agent, client_id, ["orders:read"], provider_id="bank"),
        403,
        "PROVIDER_NOT_APPROVED",
    )
    world.assert_audited("PROVIDER_NOT_APPROVED", "access_denied", provider_id="bank")


def test_scope_not_approved(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, _ = approved
    body = _err(
        world.authorize(agent, client_id, ["orders:read", "admin"]), 403, "SCOPE_NOT_APPROVED"
    )
    assert body["details"]["denied_scopes"] == ["admin"]  # type: ignore[index]
    event = world.assert_audited("SCOPE_NOT_APPROVED", "access_denied")
    assert event["denied_scopes"] == ["admin"]


def test_unregistered_redirect_uri(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, _ = approved
    _err(
        world.authorize(agent, client_id, ["orders:read"], redirect="https://evil.test/cb"),
        400,
        "INVALID_REQUEST",
    )
    # A loopback redirect URI matches on any port (RFC 8252 §7.3).
    assert (
        world.authorize(
            agent, client_id, ["orders:read"], redirect="http://127.0.0.1:53999/agent-callback"
        ).status_code
        == 200
    )


# --- callback ---------------------------------------------------------------------------------


def test_missing_and_wrong_state(world: World) -> None:
    _err(world.http.get(f"{world.base}/ath/callback", params={"code": "x"}), 400, "STATE_MISMATCH")
    world.assert_audited("STATE_MISMATCH", "access_denied")
    _err(
        world.http.get(f"{world.base}/ath/callback", params={"code": "x", "state": "forged"}),
        400,
        "STATE_MISMATCH",
    )
    assert world.assert_audited("STATE_MISMATCH")["reason"] == "wrong_state"


def test_browser_binding_mismatch_at_callback(
    world: World, approved: tuple[LocalAgent, str, str]
) -> None:
    agent, client_id, _ = approved
    url, _, _ = world.start(agent, client_id, ["orders:read"])
    with httpx.Client(timeout=10) as victim:
        callback = world.consent(url, browser=victim, stop_at=f"{world.base}/ath/callback")["url"]
        # A second browser may not even open the consent link.
        with httpx.Client(timeout=10) as attacker:
            _err(attacker.get(url), 400, "STATE_MISMATCH")
            # Nor finish the callback that the first browser's user consented to.
            _err(attacker.get(callback), 400, "STATE_MISMATCH")
        assert world.assert_audited("STATE_MISMATCH")["reason"] == "browser_binding"
        # The browser that started it can.
        finished = victim.get(callback)
        assert finished.status_code == 303 and finished.headers["location"].startswith(REDIRECT)


def test_user_denied(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, secret = approved
    url, session_id, state = world.start(agent, client_id, ["orders:read"])
    query = world.consent(url, allow=False)
    assert query == {"error": "access_denied", "state": state}
    _err(world.token(agent, client_id, secret, session_id, "ath_code_none"), 403, "USER_DENIED")
    world.assert_audited("USER_DENIED", "access_denied", agent_id=agent.agent_id)


# --- token exchange ---------------------------------------------------------------------------


def test_session_expired(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, secret = approved
    url, session_id, _ = world.start(agent, client_id, ["orders:read"])
    code = world.consent(url)["code"]
    world.clock.advance(601)
    _err(world.token(agent, client_id, secret, session_id, code), 400, "SESSION_EXPIRED")
    world.assert_audited("SESSION_EXPIRED", "access_denied")
    url2, _, _ = world.start(agent, client_id, ["orders:read"])
    world.clock.advance(601)
    _err(world.http.get(url2), 400, "SESSION_EXPIRED")


def test_session_reused_and_wrong_code(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, secret = approved
    url, session_id, _ = world.start(agent, client_id, ["orders:read"])
    code = world.consent(url)["code"]
    _err(
        world.token(agent, client_id, secret, session_id, "ath_code_" + "x" * 43),
        400,
        "SESSION_NOT_FOUND",
    )
    assert world.assert_audited("SESSION_NOT_FOUND")["reason"] == "wrong_code"
    assert world.token(agent, client_id, secret, session_id, code).status_code == 200
    _err(world.token(agent, client_id, secret, session_id, code), 400, "SESSION_NOT_FOUND")
    assert world.assert_audited("SESSION_NOT_FOUND")["reason"] == "session_used"


def test_wrong_client_secret(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, _ = approved
    url, session_id, _ = world.start(agent, client_id, ["orders:read"])
    code = world.consent(url)["code"]
    _err(world.token(agent, client_id, "ath_cs_wrong", session_id, code), 401, "INVALID_CLIENT")
    world.assert_audited("INVALID_CLIENT", "access_denied", client_id=client_id)


def test_empty_intersection_issues_no_token(world: World) -> None:
    agent = world.new_agent("narrow")
    client_id, secret = world.registered(agent)
    url, session_id, _ = world.start(agent, client_id, ["orders:write"])
    code = world.consent(url)["code"]
    # The operator withdraws orders:write before the agent exchanges its code.
    narrowed = world.admin(
        "PUT", f"/agents/{client_id}/providers/shop/scopes", json={"scopes": ["orders:read"]}
    )
    assert narrowed.status_code == 200
    body = _err(world.token(agent, client_id, secret, session_id, code), 403, "SCOPE_NOT_APPROVED")
    assert body["details"]["scope_intersection"] == {  # type: ignore[index]
        "agent_approved": ["orders:read"],
        "user_consented": ["orders:write"],
        "effective": [],
    }
    world.assert_audited("SCOPE_NOT_APPROVED", "access_denied", agent_id=agent.agent_id)
    tokens = world.admin("GET", "/tokens", params={"client_id": client_id}).json()["tokens"]
    assert tokens == []


# --- using and revoking tokens ----------------------------------------------------------------


def test_token_of_another_agent(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, secret = approved
    thief = world.new_agent("thief")
    token = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
    _err(world.api(token, thief), 403, "AGENT_IDENTITY_MISMATCH")
    world.assert_audited("AGENT_IDENTITY_MISMATCH", "attestation_failed")
    _err(world.api("ath_at_" + secrets.token_urlsafe(32)), 401, "TOKEN_INVALID")
    _err(world.http.get(f"{world.base}/api/orders"), 401, "TOKEN_INVALID")  # no token at all


def test_revoked_and_expired_tokens(world: World, approved: tuple[LocalAgent, str, str]) -> None:
    agent, client_id, secret = approved
    token = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
    revoked = world.http.post(
        f"{world.base}/ath/revoke",
        json={"token": token, "client_id": client_id, "client_secret": secret},
    )
    assert revoked.status_code == 200
    _err(world.api(token, agent), 401, "TOKEN_REVOKED")
    world.assert_audited("TOKEN_REVOKED", "access_denied")
    token = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
    world.clock.advance(3601)
    _err(world.api(token, agent), 401, "TOKEN_EXPIRED")
    world.assert_audited("TOKEN_EXPIRED", "access_denied")


def test_revoke_by_non_owner_leaves_the_token_alive(
    world: World, approved: tuple[LocalAgent, str, str]
) -> None:
    agent, client_id, secret = approved
    other = world.new_agent("nosy")
    other_id, other_secret = world.registered(other)
    token = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
    response = world.http.post(
        f"{world.base}/ath/revoke",
        json={"token": token, "client_id": other_id, "client_secret": other_secret},
    )
    assert response.status_code == 200  # RFC 7009 §2.2: no hint whether the token exists
    assert world.api(token, agent).status_code == 200
    event = world.assert_audited("INVALID_CLIENT", "access_denied", client_id=other_id)
    assert event["reason"] == "revoke_not_owner"


def test_unauthenticated_revocation_rejected(
    world: World, approved: tuple[LocalAgent, str, str]
) -> None:
    agent, client_id, secret = approved
    token = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
    _err(world.http.post(f"{world.base}/ath/revoke", json={"token": token}), 401, "INVALID_CLIENT")
    world.assert_audited("INVALID_CLIENT", "access_denied")
    _err(
        world.http.post(
            f"{world.base}/ath/revoke",
            json={"token": token, "client_id": client_id, "client_secret": "no"},
        ),
        401,
        "INVALID_CLIENT",
    )
    # Users revoke through the service's own authenticated interface.
    _err(
        world.http.post(f"{world.base}/ath/user/revoke", json={"client_id": client_id}),
        401,
        "INVALID_CLIENT",
    )
    assert world.api(token, agent).status_code == 200
    with httpx.Client(timeout=10) as user:
        user.post(f"{world.base}/test-login", data={"sub": "user-alice-1"})
        grants = user.get(f"{world.base}/ath/user/grants").json()["grants"]
        assert client_id in [g["client_id"] for g in grants]
        forged = user.post(
            f"{world.base}/ath/user/revoke",
            json={"client_id": client_id},
            headers={"Origin": "https://evil.test"},
        )
        _err(forged, 403, "INVALID_REQUEST")
        done = user.post(f"{world.base}/ath/user/revoke", json={"client_id": client_id})
        assert done.status_code == 200 and done.json()["revoked"] >= 1
    _err(world.api(token, agent), 401, "TOKEN_REVOKED")


def test_status_of_another_client_is_refused(
    world: World, approved: tuple[LocalAgent, str, str]
) -> None:
    _, client_id, _ = approved
    other = world.new_agent("peek")
    other_id, other_secret = world.registered(other)
    by_secret = world.http.get(
        f"{world.base}/ath/agents/{client_id}", auth=(other_id, other_secret)
    )
    _err(by_secret, 401, "INVALID_CLIENT")
    by_attestation = world.http.get(
        f"{world.base}/ath/agents/{client_id}",
        headers={"X-ATH-Attestation": other.attest(world.base, world.clock)},
    )
    _err(by_attestation, 403, "AGENT_NOT_REGISTERED")
    world.assert_audited("AGENT_NOT_REGISTERED", "access_denied")
    _err(world.http.get(f"{world.base}/ath/agents/{client_id}"), 401, "INVALID_CLIENT")


def test_suspension_kills_every_token(world: World) -> None:
    agent = world.new_agent("rogue")
    client_id, secret = world.registered(agent)
    tokens = [
        world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"] for _ in range(2)
    ]
    assert (
        world.admin(
            "POST", f"/agents/{client_id}/suspend", json={"reason": "leaked key"}
        ).status_code
        == 200
    )
    for token in tokens:
        _err(world.api(token, agent), 401, "TOKEN_REVOKED")
    _err(world.authorize(agent, client_id, ["orders:read"]), 403, "AGENT_UNAPPROVED")
    assert world.http.get(f"{world.base}/ath/admin/agents").status_code == 401


# --- malformed input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/ath/agents/register", "/ath/authorize", "/ath/token", "/ath/revoke"]
)
def test_malformed_json_schema_errors_and_oversized_bodies(world: World, path: str) -> None:
    url = f"{world.base}{path}"
    headers = {"Content-Type": "application/json"}
    body = _err(world.http.post(url, content=b"{not json", headers=headers), 400, "INVALID_REQUEST")
    assert body["details"]["reason"] == "malformed_json"  # type: ignore[index]
    _err(world.http.post(url, content=b"[1, 2]", headers=headers), 400, "INVALID_REQUEST")
    schema = _err(
        world.http.post(url, json={"token": 5, "client_id": ["x"]}), 400, "INVALID_REQUEST"
    )
    assert schema["details"]["field"]  # type: ignore[index]
    big = json.dumps({"padding": "x" * (70 * 1024)}).encode()
    _err(world.http.post(url, content=big, headers=headers), 413, "INVALID_REQUEST")
    world.assert_audited("INVALID_REQUEST")


def test_schema_error_names_the_field(world: World) -> None:
    agent = world.new_agent("schema")
    response = world.http.post(
        f"{world.base}/ath/agents/register",
        json={
            "agent_id": agent.agent_id,
            "agent_attestation": agent.attest(world.base, world.clock),
            "developer": {"name": "Dev"},
            "requested_providers": [{"provider_id": "shop", "scopes": ["orders:read"]}],
        },
    )
    body = _err(response, 400, "INVALID_REQUEST")
    assert body["details"]["field"] == "developer.id"  # type: ignore[index]
    assert "developer.id" in str(body["message"])
    world.assert_audited("INVALID_REQUEST", "agent_registration_denied")


def test_hostile_and_out_of_order_input_never_500(
    world: World, approved: tuple[LocalAgent, str, str]
) -> None:
    agent, client_id, secret = approved
    b = world.base
    token = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
    cases: list[tuple[httpx.Response, int, str]] = [
        (
            world.http.get(f"{b}/ath/callback", params={"state": "s" * 5000, "code": "c"}),
            400,
            "INVALID_REQUEST",
        ),
        (world.http.get(f"{b}/ath/consent/does-not-exist"), 400, "SESSION_NOT_FOUND"),
        (world.http.get(f"{b}/ath/consent/%00%ff"), 400, "INVALID_REQUEST"),  # NUL in the URL
        (world.http.post(f"{b}/ath/register", json={}), 404, "INVALID_REQUEST"),
        (world.http.get(f"{b}/ath/token"), 405, "INVALID_REQUEST"),
        (
            world.http.post(
                f"{b}/ath/agents/register",
                content=b"agent_id=x",
                headers={"Content-Type": "text/plain"},
            ),
            415,
            "INVALID_REQUEST",
        ),
        (
            world.http.post(f"{b}/ath/token", data={"grant_type": "password"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            world.http.post(
                f"{b}/ath/agents/register",
                content="\ud800".encode("utf-8", "surrogatepass"),
                headers={"Content-Type": "application/json"},
            ),
            400,
            "INVALID_REQUEST",
        ),
        (
            world.http.get(
                f"{b}/ath/agents/{client_id}", headers={"Authorization": "Basic !!!not-base64"}
            ),
            401,
            "INVALID_CLIENT",
        ),
        (
            world.http.get(f"{b}/ath/agents/{client_id}", headers={"X-ATH-Attestation": "a.b.c"}),
            401,
            "INVALID_ATTESTATION",
        ),
        (world.api("Bearer-but-not-ath"), 401, "TOKEN_INVALID"),
        (
            world.http.get(
                f"{b}/ath/agents/{client_id}", headers={"X-ATH-Attestation": b"\xe9.\xe9.\xe9"}
            ),
            401,
            "INVALID_ATTESTATION",
        ),
        (
            world.http.get(f"{b}/api/orders", headers={"Authorization": b"Bearer ath_at_\xe9"}),
            401,
            "TOKEN_INVALID",
        ),
        (
            world.http.get(
                f"{b}/api/orders",
                headers={
                    "Authorization": f"Bearer {token}",
                    "X-ATH-Agent-ID": "caf\u00e9".encode("latin-1"),
                },
            ),
            403,
            "AGENT_IDENTITY_MISMATCH",
        ),
        (world.admin("GET", "/audit", params={"limit": "nan"}), 400, "INVALID_REQUEST"),
        (world.admin("GET", "/agents", params={"status": "evil"}), 400, "INVALID_REQUEST"),
        (world.admin("POST", "/agents/nobody/approve"), 403, "AGENT_NOT_REGISTERED"),
        (
            world.admin(
                "PUT",
                f"/agents/{client_id}/providers/shop/scopes",
                json={"scopes": ["not-offered"]},
            ),
            400,
            "INVALID_REQUEST",
        ),
    ]
    # Out of order: the token before the user consented; the callback before the consent link.
    url, session_id, _ = world.start(agent, client_id, ["orders:read"])
    cases.append(
        (world.token(agent, client_id, secret, session_id, "ath_code_x"), 400, "SESSION_NOT_FOUND")
    )
    for response, status, code in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.json()["code"] == code, (response.request.url, response.text)
    assert world.http.get(url).status_code == 302


def test_lone_surrogates_in_json_strings(
    world: World, approved: tuple[LocalAgent, str, str]
) -> None:
    _, client_id, _ = approved
    bad = "SURROGATE"  # replaced by a JSON escape that decodes to a lone surrogate
    bodies = {
        "/ath/token": {
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": bad,
            "agent_attestation": "a.b.c",
            "code": bad,
            "ath_session_id": bad,
        },
        "/ath/revoke": {"token": bad, "client_id": client_id, "client_secret": bad},
        "/ath/authorize": {
            "client_id": client_id,
            "agent_attestation": bad,
            "provider_id": "shop",
            "scopes": ["orders:read"],
            "state": bad * 3,
        },
    }
    for path, body in bodies.items():
        raw = json.dumps(body).replace("SURROGATE", "\\ud800")
        response = world.http.post(
            f"{world.base}{path}",
            content=raw.encode(),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code in (400, 401), (path, response.text)
        assert response.json()["code"] in (
            "INVALID_REQUEST",
            "INVALID_CLIENT",
            "INVALID_ATTESTATION",
        ), (path, response.text)
