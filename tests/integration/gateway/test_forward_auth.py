"""Forward-auth through a real nginx: athkit's /ath/check decides, nginx forwards.

Everything the agent and the user's browser do goes to nginx (the gateway's public URL): the
handshake, consent and the API calls. Refusals are compared with what athkit's built-in proxy
answers for the same call, which must be the same ATH error.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.gateway.forward_auth import (
    CHECK_SECRET,
    ForwardAuthWorld,
    require_nginx,
    running_forward_auth_world,
)
from tests.integration.gateway.harness import LIMITED_AGENT, USERS, GatewayWorld
from tests.integration.native.harness import LocalAgent


@pytest.fixture(scope="module")
def fa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForwardAuthWorld]:
    require_nginx()
    with running_forward_auth_world(tmp_path_factory.mktemp("forward-auth")) as running:
        yield running


@pytest.fixture
def world(fa: ForwardAuthWorld) -> Iterator[GatewayWorld]:
    yield fa.world
    fa.world.clock.offset = 0.0


def connected(
    world: GatewayWorld,
    provider: str = "mail",
    scopes: list[str] | None = None,
    name: str | None = None,
) -> tuple[LocalAgent, dict[str, Any], str]:
    agent = world.new_agent(name)
    registration = world.register(agent, {provider: scopes or [f"{provider}:read"]})
    token = world.connect(agent, registration, provider, scopes or [f"{provider}:read"])
    return agent, registration, token["access_token"]


def same_refusal(
    fa: ForwardAuthWorld,
    token: str | None,
    agent: LocalAgent | None,
    method: str,
    path: str,
    *,
    agent_id: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """The call through nginx and through athkit's built-in proxy: the same ATH error."""
    world = fa.world
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if agent_id is not None or agent is not None:
        headers["X-ATH-Agent-ID"] = agent_id or (agent.agent_id if agent else "")
    via_nginx = world.http.request(
        method, f"{world.base}/ath/proxy{path}", headers=headers, **kwargs
    )
    built_in = world.http.request(method, f"{fa.athkit}/ath/proxy{path}", headers=headers, **kwargs)
    assert via_nginx.status_code == built_in.status_code, (via_nginx.text, built_in.text)
    assert via_nginx.headers["content-type"] == "application/json"
    assert via_nginx.json() == built_in.json()
    for header in ("www-authenticate", "cache-control"):
        assert via_nginx.headers.get(header) == built_in.headers.get(header), header
    return via_nginx


def test_hostile_check_requests_never_5xx(fa: ForwardAuthWorld) -> None:
    """athkit's /ath/check with hostile forwarded headers (method, URI, token, agent id), with
    and without the proxy's shared secret: never a 5xx, the documented shape, bounded time."""
    from hypothesis import given
    from hypothesis import strategies as st

    from tests.integration.gateway.forward_auth import CHECK_SECRET
    from tests.robustness._hostile import _HEADER_VALUE, Probe, check_answer

    agent, _reg, token = connected(fa.world)
    value = _HEADER_VALUE | st.sampled_from(
        [b"GET", b"/ath/proxy/mail/messages", b"/ath/proxy/mail/../cal/x", b"%00", b"\xff"]
    )

    with httpx.Client(timeout=30) as http:

        @given(
            secret=st.sampled_from([CHECK_SECRET.encode(), b"", b"wrong"]),
            method=value,
            uri=value,
            bearer=st.sampled_from([token.encode(), b""]) | _HEADER_VALUE,
            agent_id=st.sampled_from([agent.agent_id.encode()]) | _HEADER_VALUE,
        )
        def run(secret: bytes, method: bytes, uri: bytes, bearer: bytes, agent_id: bytes) -> None:
            headers = {
                "X-ATH-Check-Secret": secret,
                "X-Original-Method": method,
                "X-Original-URI": uri,
                "Authorization": b"Bearer " + bearer if bearer else b"",
                "X-ATH-Agent-ID": agent_id,
            }
            probe = Probe(
                "GET", f"{fa.athkit}/ath/check", {k: v for k, v in headers.items() if v}, None
            )
            response, seconds = probe.send(http)
            check_answer(probe, response, seconds)

        run()


def test_allowed_call_reaches_the_provider_with_the_users_token(world: GatewayWorld) -> None:
    agent, _, token = connected(world)
    got = world.call(
        token,
        agent,
        "GET",
        "/mail/messages?folder=inbox&x=%2F",
        headers={"Cookie": "session=agent-cookie"},
    )
    assert got.status_code == 200, got.text
    body = got.json()
    # The upstream checked the provider token with its OAuth server: it is alice's.
    assert body["service"] == "mail-api" and body["user"] == USERS["alice"]
    assert body["query"] == "folder=inbox&x=%2F"
    seen = {k.lower() for k in body["headers"]}
    assert "x-ath-agent-id" not in seen and "cookie" not in seen
    assert "x-ath-upstream-authorization" not in seen
    assert got.headers["x-upstream"] == "mail-api"
    one = world.call(token, agent, "GET", "/mail/messages/42")
    assert one.json() == {"id": "42", "user": USERS["alice"], "service": "mail-api"}
    # Neither the agent's responses nor the browser's pages carried a provider token.
    world.assert_no_provider_token_leaked(world.provider_tokens())


def test_every_refusal_is_the_built_in_proxys(fa: ForwardAuthWorld, world: GatewayWorld) -> None:
    agent, _, token = connected(world)
    missing = same_refusal(fa, None, agent, "GET", "/mail/messages")
    assert missing.status_code == 401 and missing.json()["code"] == "TOKEN_INVALID"
    assert missing.headers["www-authenticate"] == 'Bearer realm="ath"'
    unknown = same_refusal(fa, "ath_at_not-a-token", agent, "GET", "/mail/messages")
    assert unknown.status_code == 401 and unknown.json()["code"] == "TOKEN_INVALID"
    stranger = world.new_agent()
    mismatch = same_refusal(fa, token, None, "GET", "/mail/messages", agent_id=stranger.agent_id)
    assert mismatch.status_code == 403  # ATH §7 table
    assert mismatch.json()["code"] == "AGENT_IDENTITY_MISMATCH"
    other = same_refusal(fa, token, agent, "GET", "/cal/messages")
    assert other.status_code == 403 and other.json()["code"] == "PROVIDER_MISMATCH"
    scope = same_refusal(fa, token, agent, "DELETE", "/mail/messages/1")
    assert scope.status_code == 403 and scope.json()["code"] == "SCOPE_NOT_APPROVED"
    assert scope.json()["details"]["method"] == "DELETE"
    unmapped = same_refusal(fa, token, agent, "GET", "/mail/admin/secrets")
    assert unmapped.json()["code"] == "SCOPE_NOT_APPROVED"
    # Past the ATH token's lifetime (3600 s).
    world.clock.advance(3700)
    expired = same_refusal(fa, token, agent, "GET", "/mail/messages")
    assert expired.status_code == 401 and expired.json()["code"] == "TOKEN_EXPIRED"


def test_a_refusal_too_long_for_a_header_still_reaches_the_agent(world: GatewayWorld) -> None:
    agent, _, token = connected(world)
    refused = world.call(token, agent, "GET", "/mail/" + "x" * 6000)  # nginx takes up to 8k
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["code"] == "SCOPE_NOT_APPROVED" and body["message"].startswith("the token does")
    assert len(refused.content) < 2600  # X-ATH-Error's bound: the details were dropped


def test_rate_limit_answers_429_with_retry_after(fa: ForwardAuthWorld, world: GatewayWorld) -> None:
    agent, _, token = connected(world, name=LIMITED_AGENT)  # 3 requests a minute
    codes = [world.call(token, agent, "GET", "/mail/messages").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = world.call(token, agent, "GET", "/mail/messages")
    assert limited.status_code == 429 and limited.json()["code"] == "RATE_LIMITED"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["cache-control"] == "no-store"
    # The built-in proxy shares the counter: it refuses the same way.
    built_in = world.call(token, agent, "GET", "/mail/messages", base=fa.athkit)
    assert built_in.status_code == 429 and built_in.json()["code"] == "RATE_LIMITED"


def test_revocation_bites_on_the_next_call(world: GatewayWorld) -> None:
    agent, registration, token = connected(world)
    assert world.call(token, agent, "GET", "/mail/messages").status_code == 200
    revoked = world.http.post(
        f"{world.base}/ath/revoke",
        json={
            "token": token,
            "client_id": registration["client_id"],
            "client_secret": registration["client_secret"],
        },
    )
    assert revoked.status_code == 200, revoked.text
    dead = world.call(token, agent, "GET", "/mail/messages")
    assert dead.status_code == 401 and dead.json()["code"] == "TOKEN_REVOKED"
    # An operator's suspension kills every live token of the agent at once, too.
    agent2, registration2, token2 = connected(world, "cal", ["cal:read"])
    assert world.call(token2, agent2, "GET", "/cal/messages").status_code == 200
    suspended = world.admin(
        "POST", f"/agents/{registration2['client_id']}/suspend", json={"reason": "compromised"}
    )
    assert suspended.status_code == 200, suspended.text
    dead2 = world.call(token2, agent2, "GET", "/cal/messages")
    assert dead2.status_code == 401 and dead2.json()["code"] == "TOKEN_REVOKED"


def test_provider_token_is_refreshed_when_it_expires(world: GatewayWorld) -> None:
    agent, _, token = connected(world)
    before = world.provider_tokens()
    assert world.call(token, agent, "GET", "/mail/messages").status_code == 200
    world.clock.advance(400)  # mail's provider tokens live 300 s
    after_expiry = world.call(token, agent, "GET", "/mail/messages")
    assert after_expiry.status_code == 200, after_expiry.text
    assert after_expiry.json()["user"] == USERS["alice"]
    after = world.provider_tokens()
    assert after - before, "no new provider token was stored after the refresh"
    world.assert_no_provider_token_leaked(before | after)


def test_grant_needing_the_user_is_oauth_error(fa: ForwardAuthWorld, world: GatewayWorld) -> None:
    agent, _, token = connected(world)
    # The built-in proxy learns from the provider that even a refreshed token is refused...
    gone = world.call(token, agent, "GET", "/mail/always-401", base=fa.athkit)
    assert gone.status_code == 502 and gone.json()["code"] == "OAUTH_ERROR"
    # ... and the check refuses every later call the same way.
    again = same_refusal(fa, token, agent, "GET", "/mail/messages")
    assert again.status_code == 502 and again.json()["code"] == "OAUTH_ERROR"
    assert again.json()["details"]["reason"] == "user_reauthorization_required"


def test_streaming_response_and_large_body_both_ways(world: GatewayWorld) -> None:
    agent, _, token = connected(world, "cal", ["cal:read", "cal:write"])
    payload = bytes(range(256)) * 4096  # 1 MiB
    sent = world.call(
        token,
        agent,
        "POST",
        "/cal/messages",
        content=payload,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert sent.status_code == 201, sent.text
    assert sent.json() == {
        "created": True,
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    # A chunked upload (no Content-Length) is forwarded as well.
    chunked = world.call(
        token, agent, "POST", "/cal/messages", content=iter([payload[:1000], payload[1000:5000]])
    )
    assert chunked.status_code == 201 and chunked.json()["size"] == 5000
    mail_agent, _, mail = connected(world)
    with httpx.stream(  # not world.http: its response hook reads bodies whole
        "GET",
        f"{world.base}/ath/proxy/mail/drip",
        headers={"Authorization": f"Bearer {mail}", "X-ATH-Agent-ID": mail_agent.agent_id},
    ) as response:
        assert response.status_code == 200
        started = time.monotonic()
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.monotonic() - started
        rest = b"".join(chunks)
        total = time.monotonic() - started
    assert first.startswith(b"chunk 0") and (first + rest).count(b"chunk") == 3
    # The upstream sleeps 0.4 s twice after its first chunk: a buffering proxy would hold that
    # chunk back until the end.
    assert total - first_at >= 0.5, (first_at, total)


def test_check_endpoint_is_for_the_proxy_only(fa: ForwardAuthWorld, world: GatewayWorld) -> None:
    agent, _, token = connected(world)
    headers = {
        "Authorization": f"Bearer {token}",
        "X-ATH-Agent-ID": agent.agent_id,
        "X-Original-URI": "/ath/proxy/mail/messages",
        "X-Original-Method": "GET",
    }
    # Through nginx, the decision endpoint does not exist, with or without the secret.
    for sent in (headers, {**headers, "X-ATH-Check-Secret": CHECK_SECRET}):
        hidden = world.http.get(f"{world.base}/ath/check", headers=sent)
        assert hidden.status_code == 404 and hidden.json()["code"] == "INVALID_REQUEST"
        assert token not in hidden.text
    # At athkit itself, only the shared secret opens it.
    for secret in (None, "x" * 44):
        sent = dict(headers) if secret is None else {**headers, "X-ATH-Check-Secret": secret}
        refused = httpx.get(f"{fa.athkit}/ath/check", headers=sent)
        assert refused.status_code == 401 and refused.json()["code"] == "INVALID_CLIENT"
        assert "authorization" not in refused.headers
        assert "x-ath-upstream-authorization" not in refused.headers
    # Each of those refusals was stored before it was answered.
    denied = world.admin("GET", "/audit", params={"event": "access_denied", "limit": 20}).json()[
        "events"
    ]
    assert sum(e["code"] == "INVALID_CLIENT" for e in denied) >= 2
    outside = httpx.get(
        f"{fa.athkit}/ath/check",
        headers={**headers, "X-ATH-Check-Secret": CHECK_SECRET, "X-Original-URI": "/ath/token"},
    )
    assert outside.status_code == 404 and outside.json()["code"] == "INVALID_REQUEST"
    allowed = httpx.get(
        f"{fa.athkit}/ath/check", headers={**headers, "X-ATH-Check-Secret": CHECK_SECRET}
    )
    assert allowed.status_code == 200 and allowed.content == b""
    credential = allowed.headers["x-ath-upstream-authorization"]
    assert credential.startswith("Bearer ") and credential.split(" ", 1)[1] in (
        world.provider_tokens()
    )
    # The Envoy form: the original path after /ath/check, the original method kept.
    envoy = httpx.request(
        "DELETE",
        f"{fa.athkit}/ath/check/ath/proxy/mail/messages/1",
        headers={
            "Authorization": f"Bearer {token}",
            "X-ATH-Agent-ID": agent.agent_id,
            "X-ATH-Check-Secret": CHECK_SECRET,
        },
    )
    assert envoy.status_code == 403 and envoy.json()["code"] == "SCOPE_NOT_APPROVED"
    assert envoy.headers["x-ath-error"] == envoy.text


def test_upstream_down_is_502_and_athkit_down_fails_closed(
    fa: ForwardAuthWorld, world: GatewayWorld
) -> None:
    agent, _, token = connected(world, "cal", ["cal:read"])
    world.upstreams["cal"].server.should_exit = True  # this test runs last in the module
    deadline = time.monotonic() + 5
    while world.upstreams["cal"].server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    down = world.call(token, agent, "GET", "/cal/messages")
    assert down.status_code == 502 and down.json()["code"] == "UPSTREAM_UNAVAILABLE"
    assert down.json()["details"] == {"provider_id": "cal"}
    # athkit itself stops: nginx refuses every call rather than forward it unchecked.
    mail_agent, _, mail = connected(world)
    assert world.call(mail, mail_agent, "GET", "/mail/messages").status_code == 200
    fa.athkit_server.server.should_exit = True
    deadline = time.monotonic() + 5
    while fa.athkit_server.server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    closed = world.call(mail, mail_agent, "GET", "/mail/messages")
    assert closed.status_code == 503 and closed.json()["code"] == "INTERNAL_ERROR"
    assert closed.json()["details"] == {"reason": "check_unavailable"}
