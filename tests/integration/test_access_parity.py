"""The native guard and the gateway proxy answer every access decision identically (ATH §4.6):
one table of requests goes through both, sharing one engine, and each row must come back with
the same status, code, ``details.reason`` and headers (``WWW-Authenticate``, ``Retry-After``)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from athkit.gateway import ProxyApp
from athkit.gateway._auditqueue import AuditQueue
from athkit.gateway._metrics import GatewayMetrics
from athkit.gateway._upstream import Upstream
from athkit.protocol import ScopeRouteMap, hash_secret
from athkit.server import (
    AccessCheck,
    ATHScopeMiddleware,
    MemoryRateLimiter,
    TokenRecord,
)
from athkit.testing import serve_in_thread
from tests.unit.server.helpers import World, make_world
from tests.unit.server.test_engine import full_flow

ROUTES = {"orders:read": ["GET /orders"], "orders:write": ["POST /orders"]}


@dataclass(frozen=True)
class Rule:
    requests: int
    window_seconds: float
    agents: dict[str, int]


async def _ok(_: Request) -> JSONResponse:
    return JSONResponse({"orders": []})


@pytest.fixture
async def world() -> AsyncIterator[tuple[World, httpx.AsyncClient, httpx.AsyncClient]]:
    w = make_world()
    upstream_app = Starlette(routes=[Route("/orders", _ok, methods=["GET", "POST"])])
    with serve_in_thread(upstream_app) as upstream_server:
        routes = ScopeRouteMap.from_config(ROUTES)
        native_routes = ScopeRouteMap.from_config(
            {scope: [r.replace(" /", " /api/") for r in rules] for scope, rules in ROUTES.items()}
        )
        # Each side counts its own calls, with the same rule: a limit of 1 for one agent.
        rule = Rule(
            requests=100,
            window_seconds=60,
            agents={"https://limited.agents.test/.well-known/agent.json": 1},
        )
        native = Starlette(
            routes=[Route("/api/orders", _ok, methods=["GET", "POST"])],
            middleware=[
                Middleware(
                    ATHScopeMiddleware,
                    route_map=native_routes,
                    engine=w.engine,
                    access=AccessCheck(w.engine, limiter=MemoryRateLimiter(), rate=rule),
                )
            ],
        )
        upstream = Upstream("shop", upstream_server.url, routes, connect_timeout=2, timeout=5)
        await upstream.start()
        audit = AuditQueue(w.engine)
        proxy = ProxyApp(
            w.engine,
            {"shop": upstream},
            AccessCheck(w.engine, limiter=MemoryRateLimiter(), rate=rule),
            GatewayMetrics(["shop"]),
            audit,
        )
        try:
            async with (
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=native), base_url="http://svc"
                ) as native_client,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=proxy), base_url="http://gw"
                ) as proxy_client,
            ):
                yield w, native_client, proxy_client
        finally:
            await upstream.close()


async def _stored_token(w: World, agent_id: str, **overrides: object) -> str:
    """A token put straight into the store (expired, revoked, another provider...)."""
    token = f"ath_at_{secrets.token_urlsafe(24)}"
    now = w.clock.now()
    values: dict[str, object] = {
        "token_id": f"tok_{secrets.token_hex(6)}",
        "token_hash": hash_secret(token),
        "client_id": "ath_ci_direct",
        "agent_id": agent_id,
        "user_id": "alice",
        "provider_id": "shop",
        "scopes": ["orders:read"],
        "created_at": now,
        "expires_at": now + 600,
    }
    values.update(overrides)
    await w.stores.tokens.insert(TokenRecord(**values))  # type: ignore[arg-type]
    return token


def _answer(response: httpx.Response) -> tuple[int, str | None, str | None, dict[str, str]]:
    body = response.json()
    headers = {
        name: response.headers[name]
        for name in ("www-authenticate", "retry-after")
        if name in response.headers
    }
    if response.status_code == 200:
        return 200, None, None, headers
    return response.status_code, body["code"], body.get("details", {}).get("reason"), headers


async def test_guard_and_proxy_decide_alike(
    world: tuple[World, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    w, native, proxy = world
    agent = w.agent("parity")
    client_id, secret = await w.register(agent, ["orders:read"])
    valid = await full_flow(w, agent, client_id, secret, ["orders:read"])
    aid = agent.agent_id
    limited_agent = w.agent("limited")
    limited = limited_agent.agent_id
    limited_client, limited_secret = await w.register(limited_agent, ["orders:read"])
    limited_token = await full_flow(
        w, limited_agent, limited_client, limited_secret, ["orders:read"]
    )
    expired = await _stored_token(w, aid, expires_at=w.clock.now() - 1)
    revoked = await _stored_token(w, aid, revoked_at=w.clock.now() - 1, revoked_by="operator")
    elsewhere = await _stored_token(w, aid, provider_id="mail")

    def bearer(token: str, agent_id: str | None = aid) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"}
        if agent_id is not None:
            headers["X-ATH-Agent-ID"] = agent_id
        return headers

    table: list[tuple[str, str, dict[str, str], tuple[int, str | None, str | None]]] = [
        ("valid", "GET", bearer(valid), (200, None, None)),
        ("no token", "GET", {"X-ATH-Agent-ID": aid}, (401, "TOKEN_INVALID", "missing_token")),
        ("malformed", "GET", bearer("not-ath"), (401, "TOKEN_INVALID", "malformed_token")),
        ("unknown", "GET", bearer("ath_at_nope"), (401, "TOKEN_INVALID", "unknown_token")),
        ("expired", "GET", bearer(expired), (401, "TOKEN_EXPIRED", "token_expired")),
        ("revoked", "GET", bearer(revoked), (401, "TOKEN_REVOKED", "token_revoked")),
        (
            "wrong agent",
            "GET",
            bearer(valid, "https://thief.test/agent.json"),
            (403, "AGENT_IDENTITY_MISMATCH", "agent_mismatch"),
        ),
        (
            "no agent header",
            "GET",
            bearer(valid, None),
            (403, "AGENT_IDENTITY_MISMATCH", "missing_agent_id"),
        ),
        (
            "wrong provider",
            "GET",
            bearer(elsewhere),
            (403, "PROVIDER_MISMATCH", "provider_mismatch"),
        ),
        ("scope miss", "POST", bearer(valid), (403, "SCOPE_NOT_APPROVED", "scope_violation")),
        ("within limit", "GET", bearer(limited_token, limited), (200, None, None)),
        (
            "rate-limited",
            "GET",
            bearer(limited_token, limited),
            (429, "RATE_LIMITED", "rate_limited"),
        ),
    ]
    for name, method, headers, expected in table:
        via_guard = _answer(await native.request(method, "/api/orders", headers=headers))
        via_proxy = _answer(await proxy.request(method, "/ath/proxy/shop/orders", headers=headers))
        assert via_guard[:3] == expected, name
        assert via_guard == via_proxy, name
    # Every refusal is audited, once per front, with its reason.
    reasons = [e.reason for e in await w.engine.query_audit(limit=1000) if e.code]
    for reason in (
        "missing_token",
        "malformed_token",
        "unknown_token",
        "token_expired",
        "token_revoked",
        "agent_mismatch",
        "missing_agent_id",
        "provider_mismatch",
        "scope_violation",
        "rate_limited",
    ):
        assert reasons.count(reason) >= 2, reason
    # The headers that belong to the errors, as RFC 6750 §3 and RFC 9110 §10.2.3 name them.
    assert _answer(await native.get("/api/orders"))[3] == {"www-authenticate": 'Bearer realm="ath"'}
    revoked_answer = _answer(await proxy.get("/ath/proxy/shop/orders", headers=bearer(revoked)))
    assert revoked_answer[3]["www-authenticate"].startswith(
        'Bearer realm="ath", error="invalid_token"'
    )
    scope_answer = _answer(await native.post("/api/orders", headers=bearer(valid)))
    assert scope_answer[3]["www-authenticate"] == (
        'Bearer realm="ath", error="insufficient_scope", scope="orders:write"'
    )
    assert _answer(
        await proxy.get("/ath/proxy/shop/orders", headers=bearer(limited_token, limited))
    )[3]["retry-after"].isdigit()
