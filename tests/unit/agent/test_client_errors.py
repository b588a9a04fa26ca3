"""Error decoding and request shape of the clients, against a tiny local Starlette double.

The double only answers ATH error bodies (and records what it was sent); the full handshake
against the real engine and gateway is in tests/integration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from athkit.agent import (
    NETWORK_ERROR,
    NOT_AUTHORIZED,
    NOT_REGISTERED,
    TOKEN_EXPIRED,
    AsyncATHClient,
    ATHClient,
    ATHClientError,
    MemoryCredentialStore,
    StoredClient,
    StoredToken,
    generate_key,
)
from athkit.protocol import ErrorCode, read_unverified_claims
from athkit.testing import ServerHandle, free_port, serve_in_thread

AGENT = "http://127.0.0.1:1/.well-known/agent.json"
DEV = {"name": "Acme", "id": "acme"}


class Double:
    """Answers every ATH endpoint with the error it is told to, and records each request."""

    def __init__(self) -> None:
        self.error: tuple[int, Any] = (400, {"code": "INVALID_REQUEST", "message": "no"})
        self.seen: list[dict[str, Any]] = []

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        self.seen.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "json": await request.json() if body.startswith(b"{") else None,
            }
        )
        status, payload = self.error
        if isinstance(payload, str):
            return PlainTextResponse(payload, status_code=status)
        return JSONResponse(payload, status_code=status)

    async def _slow(self, request: Request) -> Response:
        await asyncio.sleep(2)
        return JSONResponse({})

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "DELETE"]
        return Starlette(
            routes=[
                Route("/slow/.well-known/ath.json", self._slow),
                Route("/{path:path}", self._endpoint, methods=methods),
            ]
        )


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Double, ServerHandle]]:
    double = Double()
    with serve_in_thread(double.app()) as handle:
        yield double, handle


@pytest.fixture
def double(served: tuple[Double, ServerHandle]) -> Double:
    served[0].seen.clear()
    served[0].error = (400, {"code": "INVALID_REQUEST", "message": "no"})
    return served[0]


@pytest.fixture
def base(served: tuple[Double, ServerHandle]) -> str:
    return served[1].url


def _registered_store(base: str) -> MemoryCredentialStore:
    store = MemoryCredentialStore()
    store.save_client(base, StoredClient(agent_id=AGENT, client_id="cid", client_secret="sec"))
    return store


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_ath_error_comes_back_as_ath_client_error(
    double: Double, base: str, code: ErrorCode
) -> None:
    double.error = (code.http_status, {"code": code.value, "message": "why", "details": {"k": 1}})
    with (
        ATHClient(base, agent_id=AGENT, private_key=generate_key(), mode="gateway") as client,
        pytest.raises(ATHClientError) as info,
    ):
        client.register({"mail": ["mail:read"]}, developer=DEV)
    assert info.value.code == code.value
    assert info.value.status == code.http_status
    assert info.value.message == "why"
    assert info.value.details == {"k": 1}


async def test_async_client_maps_errors_the_same_way(double: Double, base: str) -> None:
    double.error = (409, {"code": "AGENT_ALREADY_REGISTERED", "message": "twice"})
    async with AsyncATHClient(
        base, agent_id=AGENT, private_key=generate_key(), mode="gateway"
    ) as client:
        with pytest.raises(ATHClientError) as info:
            await client.register({"mail": ["mail:read"]}, developer=DEV)
    assert (info.value.code, info.value.status) == ("AGENT_ALREADY_REGISTERED", 409)


def test_error_without_ath_body_and_bad_success_body(double: Double, base: str) -> None:
    client = ATHClient(base, agent_id=AGENT, private_key=generate_key(), mode="gateway")
    double.error = (502, "Bad Gateway")
    with pytest.raises(ATHClientError) as info:
        client.discover()
    assert (info.value.code, info.value.status) == ("HTTP_ERROR", 502)
    assert "Bad Gateway" in info.value.message
    double.error = (200, {"gateway_id": "g"})
    with pytest.raises(ATHClientError) as info:
        client.discover()
    assert info.value.code == "BAD_RESPONSE"
    assert "GatewayDiscovery" in info.value.message
    client.close()


def test_auto_mode_falls_back_to_native_discovery_on_404(double: Double, base: str) -> None:
    double.error = (404, {"code": "NOT_FOUND", "message": "nope"})
    with (
        ATHClient(base, agent_id=AGENT, private_key=generate_key()) as client,
        pytest.raises(ATHClientError) as info,
    ):
        client.discover()
    assert info.value.status == 404
    assert [s["path"] for s in double.seen] == [
        "/.well-known/ath.json",
        "/.well-known/ath-app.json",
    ]


def test_each_call_signs_a_fresh_attestation_with_its_endpoint_audience(
    double: Double, base: str
) -> None:
    double.error = (401, {"code": "INVALID_ATTESTATION", "message": "checked"})
    store = _registered_store(base)
    with ATHClient(
        base + "/", agent_id=AGENT, private_key=generate_key(), mode="gateway", store=store
    ) as client:
        for call in (
            lambda: client.register({"mail": ["mail:read"]}, developer=DEV),
            lambda: client.authorize("mail", ["mail:read"]),
            lambda: client.authorize("mail", ["mail:read"]),
            lambda: client.exchange_token("code", "sess"),
            lambda: client.status("someone-else"),
        ):
            with pytest.raises(ATHClientError):
                call()
    register, auth1, auth2, token, status = double.seen
    audiences = [
        read_unverified_claims(r["json"]["agent_attestation"])["aud"]
        for r in (register, auth1, auth2, token)
    ]
    audiences.append(read_unverified_claims(status["headers"]["x-ath-attestation"])["aud"])
    assert audiences == [base, base, base, base + "/ath/token", base]
    jtis = {
        read_unverified_claims(r["json"]["agent_attestation"])["jti"]
        for r in (register, auth1, auth2, token)
    }
    assert len(jtis) == 4  # never reused
    assert auth1["json"]["state"] != auth2["json"]["state"]
    assert len(auth1["json"]["state"]) >= 43  # 256 bits, base64url
    assert token["json"]["client_secret"] == "sec"
    assert token["json"]["grant_type"] == "authorization_code"
    assert register["json"]["redirect_uris"] == ["http://127.0.0.1/callback"]


def test_status_with_stored_credentials_uses_basic_auth(double: Double, base: str) -> None:
    double.error = (401, {"code": "INVALID_CLIENT", "message": "wrong secret"})
    store = _registered_store(base)
    with (
        ATHClient(base, agent_id=AGENT, private_key=generate_key(), store=store) as client,
        pytest.raises(ATHClientError) as info,
    ):
        client.status()
    assert info.value.code == "INVALID_CLIENT"
    (seen,) = double.seen
    assert seen["path"] == "/ath/agents/cid"
    assert seen["headers"]["authorization"] == "Basic Y2lkOnNlYw=="  # cid:sec
    assert "x-ath-attestation" not in seen["headers"]


def test_expired_token_is_not_sent(double: Double, base: str) -> None:
    store = _registered_store(base)
    store.save_token(
        base,
        StoredToken(
            agent_id=AGENT,
            provider_id="mail",
            access_token="old-token",
            effective_scopes=["mail:read"],
            expires_at=time.time() - 1,
        ),
    )
    with ATHClient(
        base, agent_id=AGENT, private_key=generate_key(), mode="gateway", store=store
    ) as client:
        with pytest.raises(ATHClientError) as info:
            client.proxy("mail", "GET", "/messages")
        with pytest.raises(ATHClientError) as missing:
            client.proxy("calendar", "GET", "/events")
    assert info.value.code == TOKEN_EXPIRED
    assert "authorize again" in info.value.message
    assert missing.value.code == NOT_AUTHORIZED
    assert double.seen == []  # nothing left the process


def test_proxy_returns_provider_answers_and_raises_gateway_refusals(
    double: Double, base: str
) -> None:
    store = _registered_store(base)
    store.save_token(
        base,
        StoredToken(
            agent_id=AGENT,
            provider_id="mail",
            access_token="live-token",
            effective_scopes=["mail:read"],
            expires_at=time.time() + 600,
        ),
    )
    with ATHClient(
        base, agent_id=AGENT, private_key=generate_key(), mode="gateway", store=store
    ) as client:
        double.error = (404, {"error": "no such message"})  # the provider's own answer
        response = client.proxy("mail", "GET", "/messages/7", params={"x": "1"})
        assert response.status_code == 404
        assert response.json() == {"error": "no such message"}
        double.error = (403, {"code": "SCOPE_NOT_APPROVED", "message": "mail:send needed"})
        with pytest.raises(ATHClientError) as info:
            client.proxy("mail", "POST", "/messages", json={"to": "x"})
        assert info.value.code == "SCOPE_NOT_APPROVED"
        raw = client.proxy("mail", "POST", "/messages", json={}, raise_for_ath_error=False)
        assert raw.status_code == 403
    first = double.seen[0]
    assert first["path"] == "/ath/proxy/mail/messages/7"
    assert first["headers"]["authorization"] == "Bearer live-token"
    assert first["headers"]["x-ath-agent-id"] == AGENT


def test_unregistered_agent_is_told_to_register(base: str) -> None:
    with (
        ATHClient(base, agent_id=AGENT, private_key=generate_key(), mode="gateway") as client,
        pytest.raises(ATHClientError) as info,
    ):
        client.authorize("mail", ["mail:read"])
    assert info.value.code == NOT_REGISTERED


def test_network_failure_has_its_own_code() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with (
        ATHClient(closed, agent_id=AGENT, private_key=generate_key()) as client,
        pytest.raises(ATHClientError) as info,
    ):
        client.discover()
    assert info.value.code == NETWORK_ERROR
    assert info.value.status is None


async def test_timeout_is_a_network_error(base: str) -> None:
    async with AsyncATHClient(
        base + "/slow",
        agent_id=AGENT,
        private_key=generate_key(),
        mode="gateway",
        timeout=httpx.Timeout(0.3),
    ) as client:
        with pytest.raises(ATHClientError) as info:
            await client.discover()
    assert info.value.code == NETWORK_ERROR
    assert info.value.details["reason"] == "timeout"


def test_bad_base_url_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="http"):
        ATHClient("127.0.0.1:8000", agent_id=AGENT, private_key=generate_key())


def test_invalid_urls_are_value_errors_not_tracebacks(base: str) -> None:
    with pytest.raises(ValueError, match="not a valid URL"):
        ATHClient("http://127.0.0.1:1\n", agent_id=AGENT, private_key=generate_key())
    store = _registered_store(base)
    store.save_token(
        base,
        StoredToken(
            agent_id=AGENT,
            provider_id="mail",
            access_token="t",
            effective_scopes=[],
            expires_at=time.time() + 60,
        ),
    )
    with (
        ATHClient(
            base, agent_id=AGENT, private_key=generate_key(), mode="gateway", store=store
        ) as client,
        pytest.raises(ValueError, match="cannot send"),
    ):
        client.proxy("mail", "GET", "/a\x00b")
