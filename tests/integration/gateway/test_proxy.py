"""The proxy (ATH §4.6) over real HTTP: a gateway and an upstream API on 127.0.0.1.

Tokens and provider grants are written into the engine's stores directly here (the handshake
itself is covered by test_gateway_flow.py); everything after that is the real gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from athkit.gateway import (
    GatewayApp,
    GatewayProviderSettings,
    GatewaySettings,
    RateLimitConfig,
    create_gateway_app,
)
from athkit.protocol import ATHError, ErrorCode, generate_secret, hash_secret
from athkit.server import (
    AgentRecord,
    AuditQuery,
    ProviderApproval,
    ProviderGrant,
    TokenCipher,
    TokenRecord,
    memory_stores,
)
from athkit.testing import free_port, serve_in_thread
from tests.integration.gateway.upstream import create_upstream_app

SECRET_KEY = "s" * 40
AGENT = "https://agent.example/.well-known/agent.json"
PROVIDER_TOKENS = {"mail": "mail-provider-token-0123456789", "cal": "cal-provider-token-987654321"}


class RefusingVerifier:
    """These tests never run a handshake: any attestation reaching the verifier is refused."""

    async def verify(
        self, token: str, *, audience: str, expected_agent_id: str | None = None
    ) -> Any:
        raise ATHError(ErrorCode.INVALID_ATTESTATION, "not used in proxy tests")


def provider(pid: str, api_base: str, **extra: Any) -> GatewayProviderSettings:
    return GatewayProviderSettings(
        provider_id=pid,
        display_name=pid.title(),
        authorization_endpoint="http://127.0.0.1:9/authorize",
        token_endpoint="http://127.0.0.1:9/token",
        client_id="gw",
        client_secret=SecretStr("unused"),
        scopes=[f"{pid}:read", f"{pid}:write", f"{pid}:other"],
        auto_approve=[f"{pid}:read", f"{pid}:write"],
        api_base=api_base,
        routes={
            f"{pid}:read": [
                "GET /messages",
                "GET /messages/{id}",
                "GET /slow",
                "GET /big",
                "GET /echo-auth",
            ],
            f"{pid}:write": ["POST /messages", "DELETE /messages/{id}"],
        },
        **extra,
    )


@dataclass
class Gateway:
    app: GatewayApp
    url: str
    tokens: dict[str, str]

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        agent: str | None = AGENT,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if agent is not None:
            headers["X-ATH-Agent-ID"] = agent
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def audit(self, event: str) -> list[Any]:
        async def query() -> Any:
            return await self.app.engine.stores.audit.query(AuditQuery(event=event))

        return list(asyncio.run(query()))


async def _valid(token: str) -> str | None:
    return "user-1" if token in PROVIDER_TOKENS.values() else None


async def _seed(app: GatewayApp, pid: str, scopes: list[str]) -> str:
    now = time.time()
    stores = app.engine.stores
    cipher = TokenCipher(SECRET_KEY)
    grant_id = generate_secret("grant_", 12)
    client_id = generate_secret("client_", 6)  # one grant per (client, user, provider)
    await stores.grants.upsert(
        ProviderGrant(
            grant_id=grant_id,
            client_id=client_id,
            agent_id=AGENT,
            user_id="user-1",
            provider_id=pid,
            consented_scopes=scopes,
            access_token_enc=cipher.encrypt(PROVIDER_TOKENS[pid], bound_to=grant_id),
            created_at=now,
            updated_at=now,
            expires_at=now + 3600,
        )
    )
    token = generate_secret("ath_at_")
    await stores.tokens.insert(
        TokenRecord(
            token_id=generate_secret("tok_", 12),
            token_hash=hash_secret(token),
            client_id=client_id,
            agent_id=AGENT,
            user_id="user-1",
            provider_id=pid,
            scopes=scopes,
            created_at=now,
            expires_at=now + 600,
            grant_id=grant_id,
        )
    )
    return token


def _agent() -> AgentRecord:
    now = time.time()
    return AgentRecord(
        client_id="client-1",
        agent_id=AGENT,
        agent_name="Agent",
        developer_name="Dev",
        developer_id="dev",
        client_secret_hash=hash_secret("x"),
        status="approved",
        providers=[ProviderApproval("mail", ["mail:read"], ["mail:read"], [])],
        created_at=now,
        updated_at=now,
        approval_expires=now + 3600,
    )


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve_in_thread(create_upstream_app(_valid, name="mail-api")) as server:
        yield server.url


def _start(upstream: str, **overrides: Any) -> tuple[GatewayApp, Any]:
    dead_port = free_port()
    settings = GatewaySettings(
        base_url="http://127.0.0.1:1",
        secret_key=SecretStr(SECRET_KEY),
        gateway_id="test-gw",
        providers=[
            provider("mail", upstream, timeout=0.5),
            provider("cal", f"http://127.0.0.1:{dead_port}/api"),
        ],
        rate_limit=overrides.pop("rate_limit", RateLimitConfig()),
    )
    app = create_gateway_app(settings, stores=memory_stores(), verifier=RefusingVerifier())
    return app, serve_in_thread(app)


@pytest.fixture(scope="module")
def gateway(upstream_url: str) -> Iterator[Gateway]:
    app, server_cm = _start(upstream_url)
    with server_cm as server:
        tokens = {
            "mail": asyncio.run(_seed(app, "mail", ["mail:read", "mail:write"])),
            "mail_ro": asyncio.run(_seed(app, "mail", ["mail:read"])),
            "cal": asyncio.run(_seed(app, "cal", ["cal:read"])),
        }
        asyncio.run(app.engine.stores.agents.insert(_agent()))
        yield Gateway(app, server.url, tokens)


def test_forwards_with_the_provider_token_and_returns_the_answer_unchanged(
    gateway: Gateway,
) -> None:
    r = gateway.call(
        "GET",
        "/ath/proxy/mail/messages?folder=inbox&q=a%20b&q=c",
        token=gateway.tokens["mail"],
        headers={
            "X-Custom": "kept",
            "Cookie": "session=agent-cookie",
            "X-ATH-Debug": "agent-only",
            "Connection": "keep-alive, X-Hop-Header",
            "X-Hop-Header": "named in Connection",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["service"] == "mail-api" and body["user"] == "user-1"
    assert body["query"] == "folder=inbox&q=a%20b&q=c"  # raw query string, untouched
    seen = body["headers"]
    assert seen["x-custom"] == "kept"
    for stripped in (
        "cookie",
        "x-ath-debug",
        "x-ath-agent-id",
        "x-hop-header",
        "proxy-authorization",
    ):
        assert stripped not in seen, stripped
    assert seen["host"] == gateway_host(gateway)
    # The provider's own headers come back, minus hop-by-hop ones.
    assert r.headers["x-upstream"] == "mail-api"
    assert "x-private-hop" not in r.headers and "keep-alive" not in r.headers
    assert PROVIDER_TOKENS["mail"] not in r.text + str(r.headers)


def gateway_host(gateway: Gateway) -> str:
    api = gateway.app.settings.providers[0].api_base
    return httpx.URL(api).netloc.decode()


def test_request_and_response_bodies_stream_through(gateway: Gateway) -> None:
    payload = [bytes([i]) * 65536 for i in range(40)]  # 2.5 MiB, sent chunked
    r = gateway.call(
        "POST",
        "/ath/proxy/mail/messages",
        token=gateway.tokens["mail"],
        content=iter(payload),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert r.json() == {
        "created": True,
        "size": 40 * 65536,
        "sha256": hashlib.sha256(b"".join(payload)).hexdigest(),
    }
    big = gateway.call("GET", "/ath/proxy/mail/big", token=gateway.tokens["mail"])
    assert big.status_code == 200
    assert big.content == b"".join(bytes([i]) * 16384 for i in range(64))
    deleted = gateway.call("DELETE", "/ath/proxy/mail/messages/7", token=gateway.tokens["mail"])
    assert deleted.status_code == 204 and deleted.content == b""


@pytest.mark.parametrize(
    ("path", "token_name", "agent", "status", "code"),
    [
        ("/ath/proxy/mail/messages", None, AGENT, 401, "TOKEN_INVALID"),
        ("/ath/proxy/mail/messages", "bogus", AGENT, 401, "TOKEN_INVALID"),
        (
            "/ath/proxy/mail/messages",
            "mail",
            "https://evil.example/agent.json",
            403,
            "AGENT_IDENTITY_MISMATCH",
        ),
        ("/ath/proxy/mail/messages", "mail", None, 403, "AGENT_IDENTITY_MISMATCH"),
        ("/ath/proxy/cal/messages", "mail", AGENT, 403, "PROVIDER_MISMATCH"),
        ("/ath/proxy/mail/admin/users", "mail", AGENT, 403, "SCOPE_NOT_APPROVED"),
        ("/ath/proxy/mail/messages/1/../../admin", "mail", AGENT, 403, "SCOPE_NOT_APPROVED"),
        ("/ath/proxy/mail/messages/%2e%2e", "mail", AGENT, 403, "SCOPE_NOT_APPROVED"),
    ],
)
def test_rejections(
    gateway: Gateway, path: str, token_name: str | None, agent: str | None, status: int, code: str
) -> None:
    token = gateway.tokens.get(token_name, token_name) if token_name else None
    r = gateway.call("GET", path, token=token, agent=agent)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert PROVIDER_TOKENS["mail"] not in r.text


def test_agent_header_is_compared_in_canonical_form(gateway: Gateway) -> None:
    # ATH §2: another spelling of the same identity URL is the same agent; a look-alike is not.
    same = "HTTPS://Agent.Example:443/.well-known/agent.json"
    r = gateway.call("GET", "/ath/proxy/mail/messages", token=gateway.tokens["mail"], agent=same)
    assert r.status_code == 200, r.text
    for other in (
        "https://agent.example/.well-known/../.well-known/agent.json",
        "https://agent.example@agent.example/.well-known/agent.json",
        "https://agent.example/.well-known/agent.json#x",
    ):
        r = gateway.call(
            "GET", "/ath/proxy/mail/messages", token=gateway.tokens["mail"], agent=other
        )
        assert (r.status_code, r.json()["code"]) == (403, "AGENT_IDENTITY_MISMATCH")


def test_scope_miss_is_audited_as_scope_violation(gateway: Gateway) -> None:
    r = gateway.call(
        "POST", "/ath/proxy/mail/messages", token=gateway.tokens["mail_ro"], content=b"{}"
    )
    assert r.status_code == 403 and r.json()["code"] == "SCOPE_NOT_APPROVED"
    events = gateway.audit("scope_violation")
    assert any(
        e.details.get("method") == "POST" and e.details.get("path") == "/messages" for e in events
    )


def test_successful_calls_are_audited_as_proxy_request(gateway: Gateway) -> None:
    r = gateway.call("GET", "/ath/proxy/mail/messages/42", token=gateway.tokens["mail_ro"])
    assert r.status_code == 200 and r.json()["id"] == "42"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        events = gateway.audit("proxy_request")
        if any(e.details.get("path") == "/messages/42" for e in events):
            break
        time.sleep(0.05)
    match = [e for e in events if e.details.get("path") == "/messages/42"]
    assert match and match[0].effective_scopes == ["mail:read"]
    assert match[0].details["status"] == 200 and match[0].user_id == "user-1"


def test_upstream_down_is_502_and_slow_is_504(gateway: Gateway) -> None:
    down = gateway.call("GET", "/ath/proxy/cal/messages", token=gateway.tokens["cal"])
    assert down.status_code == 502 and down.json()["code"] == "UPSTREAM_UNAVAILABLE"
    assert "could not be reached" in down.json()["message"]
    started = time.monotonic()
    slow = gateway.call("GET", "/ath/proxy/mail/slow", token=gateway.tokens["mail"])
    assert slow.status_code == 504 and slow.json()["code"] == "UPSTREAM_TIMEOUT"
    assert "did not answer within 0.5 s" in slow.json()["message"]
    assert time.monotonic() - started < 2.5


def test_an_upstream_echoing_the_provider_token_is_withheld(gateway: Gateway) -> None:
    r = gateway.call("GET", "/ath/proxy/mail/echo-auth", token=gateway.tokens["mail"])
    assert r.status_code == 502 and r.json()["code"] == "OAUTH_ERROR"
    assert PROVIDER_TOKENS["mail"] not in r.text


def test_revoked_token_stops_working_at_once(gateway: Gateway) -> None:
    token = asyncio.run(_seed(gateway.app, "mail", ["mail:read"]))
    assert gateway.call("GET", "/ath/proxy/mail/messages", token=token).status_code == 200

    async def revoke() -> None:
        record = await gateway.app.engine.stores.tokens.get_by_hash(hash_secret(token))
        assert record is not None
        await gateway.app.engine.revoke_token_admin(record.token_id)

    asyncio.run(revoke())
    r = gateway.call("GET", "/ath/proxy/mail/messages", token=token)
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_REVOKED"


def test_rate_limit_trips_with_retry_after(upstream_url: str) -> None:
    app, server_cm = _start(upstream_url, rate_limit=RateLimitConfig(requests=3, window_seconds=60))
    with server_cm as server:
        token = asyncio.run(_seed(app, "mail", ["mail:read"]))
        gw = Gateway(app, server.url, {"t": token})
        codes = [
            gw.call("GET", "/ath/proxy/mail/messages", token=token).status_code for _ in range(3)
        ]
        assert codes == [200, 200, 200]
        limited = gw.call("GET", "/ath/proxy/mail/messages", token=token)
        assert limited.status_code == 429 and limited.json()["code"] == "RATE_LIMITED"
        assert 1 <= int(limited.headers["retry-after"]) <= 120


def test_catalog_health_and_metrics(gateway: Gateway) -> None:
    catalog = httpx.get(gateway.url + "/.well-known/ath.json").json()
    assert catalog["gateway_id"] == "test-gw"
    assert catalog["agent_registration_endpoint"] == "http://127.0.0.1:1/ath/agents/register"
    assert {p["provider_id"] for p in catalog["supported_providers"]} == {"mail", "cal"}
    mail = next(p for p in catalog["supported_providers"] if p["provider_id"] == "mail")
    assert mail["available_scopes"] == ["mail:read", "mail:write", "mail:other"]
    assert mail["auth_mode"] == "OAUTH2" and mail["agent_approval_required"] is False
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    gateway.call("GET", "/ath/proxy/mail/messages", token=gateway.tokens["mail"])
    metrics = httpx.get(gateway.url + "/metrics").text
    assert (
        'athkit_gateway_requests_total{endpoint="/ath/proxy/{provider_id}/{path}",'
        'outcome="upstream_2xx"}' in metrics
    )
    assert 'athkit_gateway_proxy_seconds_bucket{le="0.005",provider="mail"}' in metrics
    assert "athkit_gateway_active_tokens " in metrics
    assert 'endpoint="/healthz",outcome="200"' in metrics


class FailingTokenStore:
    """A token store whose backend is gone (every call raises, as a dead database would)."""

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("database unreachable")

        return fail


def test_a_failing_store_fails_closed_and_readyz_says_so(upstream_url: str) -> None:
    import dataclasses

    stores = dataclasses.replace(memory_stores(), tokens=FailingTokenStore())  # type: ignore[arg-type]
    settings = GatewaySettings(
        base_url="http://127.0.0.1:1",
        secret_key=SecretStr(SECRET_KEY),
        providers=[provider("mail", upstream_url)],
    )
    app = create_gateway_app(settings, stores=stores, verifier=RefusingVerifier())
    with serve_in_thread(app) as server:
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("failing")
        assert httpx.get(server.url + "/healthz").status_code == 200  # alive, not ready
        r = httpx.get(
            server.url + "/ath/proxy/mail/messages",
            headers={"Authorization": "Bearer ath_at_whatever", "X-ATH-Agent-ID": AGENT},
        )
        assert r.status_code == 500 and r.json()["code"] == "INTERNAL_ERROR"
        assert "Traceback" not in r.text


def _redis_up() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.redis
@pytest.mark.skipif(
    not _redis_up() and os.environ.get("ATH_REQUIRE_SERVICES") != "1",
    reason="Redis is not running on 127.0.0.1:6379",
)
def test_redis_rate_limit_is_shared_by_two_gateway_instances(upstream_url: str) -> None:
    prefix = f"athkit-test:{secrets.token_hex(8)}"
    rate = RateLimitConfig(
        requests=4,
        window_seconds=60,
        backend="redis",
        redis_url="redis://127.0.0.1:6379/0",
        key_prefix=prefix,
    )
    stores = memory_stores()  # both instances share one database, as with PostgreSQL
    apps = [
        create_gateway_app(
            GatewaySettings(
                base_url="http://127.0.0.1:1",
                secret_key=SecretStr(SECRET_KEY),
                providers=[provider("mail", upstream_url)],
                rate_limit=rate,
            ),
            stores=stores,
            verifier=RefusingVerifier(),
        )
        for _ in range(2)
    ]
    token = asyncio.run(_seed(apps[0], "mail", ["mail:read"]))
    with serve_in_thread(apps[0]) as one, serve_in_thread(apps[1]) as two:
        gateways = [Gateway(apps[0], one.url, {}), Gateway(apps[1], two.url, {})]
        codes = [
            gateways[i % 2].call("GET", "/ath/proxy/mail/messages", token=token).status_code
            for i in range(6)
        ]
        assert codes == [200, 200, 200, 200, 429, 429]
        assert httpx.get(one.url + "/readyz").json()["checks"]["rate_limiter"] == "ok"
