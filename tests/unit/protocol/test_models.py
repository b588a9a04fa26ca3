"""Protocol messages (ATH §2–§5, §7): exact field names, tolerant input, clean output."""

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from athkit.protocol import (
    AgentStatusResponse,
    AppDiscovery,
    ApprovedProvider,
    ATHError,
    ATHModel,
    AuthorizeRequest,
    AuthorizeResponse,
    Developer,
    ErrorCode,
    ErrorResponse,
    GatewayDiscovery,
    IdentityDocument,
    RegisterRequest,
    RegisterResponse,
    RevokeRequest,
    TokenRequest,
    TokenResponse,
)

STATE = "s" * 43

# One valid instance of every message, with every optional field set, as a peer would send it.
FULL: dict[type[ATHModel], dict[str, Any]] = {
    IdentityDocument: {
        "ath_version": "0.1",
        "agent_id": "https://agent.example/.well-known/agent.json",
        "name": "Agent",
        "developer": {"name": "Dev", "id": "dev-1", "contact": "dev@agent.example"},
        "public_key": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"},
        "capabilities": ["shop"],
    },
    GatewayDiscovery: {
        "ath_version": "0.1",
        "gateway_id": "gw",
        "agent_registration_endpoint": "https://gw.example/ath/agents/register",
        "supported_providers": [
            {
                "provider_id": "github",
                "display_name": "GitHub",
                "categories": ["code"],
                "available_scopes": ["repo"],
                "auth_mode": "OAUTH2",
                "agent_approval_required": True,
            }
        ],
    },
    AppDiscovery: {
        "ath_version": "0.1",
        "app_id": "shop",
        "name": "Shop",
        "auth": {
            "type": "oauth2",
            "authorization_endpoint": "https://shop.example/ath/authorize",
            "token_endpoint": "https://shop.example/ath/token",
            "registration_endpoint": "https://shop.example/ath/agents/register",
            "scopes_supported": ["orders:read"],
            "agent_attestation_required": True,
        },
        "api_base": "https://shop.example/api",
    },
    RegisterRequest: {
        "agent_id": "https://agent.example/.well-known/agent.json",
        "agent_attestation": "a.b.c",
        "developer": {"name": "Dev", "id": "dev-1"},
        "requested_providers": [{"provider_id": "shop", "scopes": ["orders:read"]}],
        "purpose": "testing",
        "redirect_uris": ["http://127.0.0.1/cb"],
    },
    RegisterResponse: {
        "client_id": "c1",
        "client_secret": "secret",
        "agent_status": "approved",
        "approved_providers": [
            {
                "provider_id": "shop",
                "approved_scopes": ["orders:read"],
                "denied_scopes": ["orders:write"],
                "denial_reason": "policy",
                "pending_scopes": ["payments"],
            }
        ],
        "approval_expires": "2026-12-01T00:00:00Z",
    },
    AgentStatusResponse: {
        "client_id": "c1",
        "agent_id": "https://agent.example/.well-known/agent.json",
        "agent_status": "pending",
        "approved_providers": [],
        "approval_expires": "2026-12-01T00:00:00Z",
    },
    AuthorizeRequest: {
        "client_id": "c1",
        "agent_attestation": "a.b.c",
        "provider_id": "shop",
        "scopes": ["orders:read"],
        "state": STATE,
        "user_redirect_uri": "http://127.0.0.1/cb",
        "resource": "https://shop.example/api",
    },
    AuthorizeResponse: {
        "authorization_url": "https://shop.example/oauth/authorize?x=1",
        "ath_session_id": "sess",
    },
    TokenRequest: {
        "grant_type": "authorization_code",
        "client_id": "c1",
        "client_secret": "secret",
        "agent_attestation": "a.b.c",
        "code": "code",
        "ath_session_id": "sess",
    },
    TokenResponse: {
        "access_token": "ath_at_x",
        "token_type": "Bearer",
        "expires_in": 3600,
        "effective_scopes": ["orders:read"],
        "provider_id": "shop",
        "agent_id": "https://agent.example/.well-known/agent.json",
        "scope_intersection": {
            "agent_approved": ["orders:read"],
            "user_consented": ["orders:read"],
            "effective": ["orders:read"],
        },
    },
    RevokeRequest: {"token": "ath_at_x", "client_id": "c1", "client_secret": "secret"},
    ErrorResponse: {"code": "TOKEN_INVALID", "message": "no", "details": {"why": "x"}},
}


def _normalised(data: Any) -> Any:
    return json.loads(json.dumps(data).replace("Z", "+00:00").replace("+00:00", "Z"))


@pytest.mark.parametrize("model", list(FULL), ids=lambda m: m.__name__)
def test_field_names_are_exactly_the_spec(model: type[ATHModel]) -> None:
    message = model.parse(FULL[model])
    assert _normalised(message.dump()) == _normalised(FULL[model])


@pytest.mark.parametrize("model", list(FULL), ids=lambda m: m.__name__)
def test_unknown_fields_are_tolerated_and_never_emitted(model: type[ATHModel]) -> None:
    data = json.loads(json.dumps(FULL[model]))
    data["x_future_field"] = {"nested": True}
    for name, value in data.items():
        # public_key (a JWK) and details are free-form JSON objects, not messages.
        if isinstance(value, dict) and name not in ("public_key", "details"):
            value["x_inner"] = 1
    dumped = json.dumps(model.parse(data).dump())
    assert "x_future_field" not in dumped and "x_inner" not in dumped


def test_optional_fields_are_omitted_when_unset() -> None:
    doc = IdentityDocument(
        agent_id="https://agent.example/.well-known/agent.json",
        name="Agent",
        developer=Developer(name="Dev", id="d"),
        public_key="-----BEGIN PUBLIC KEY-----...",
    )
    assert doc.dump() == {
        "ath_version": "0.1",
        "agent_id": "https://agent.example/.well-known/agent.json",
        "name": "Agent",
        "developer": {"name": "Dev", "id": "d"},
        "public_key": "-----BEGIN PUBLIC KEY-----...",
    }
    provider = ApprovedProvider(provider_id="p", approved_scopes=["a"], denied_scopes=[])
    assert "denial_reason" not in provider.dump()
    assert ErrorResponse(code="X", message="m").dump() == {"code": "X", "message": "m"}


def test_datetimes_are_iso_8601() -> None:
    expires = datetime(2026, 12, 1, tzinfo=UTC)
    response = RegisterResponse(
        client_id="c",
        client_secret="s",
        agent_status="approved",
        approved_providers=[],
        approval_expires=expires,
    )
    assert datetime.fromisoformat(response.dump()["approval_expires"]) == expires


def test_token_response_defaults_to_bearer() -> None:
    data = dict(FULL[TokenResponse])
    del data["token_type"]
    assert TokenResponse.parse(data).dump()["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (TokenRequest, {**FULL[TokenRequest], "grant_type": "password"}, "grant_type"),
        # code may be omitted (a session without redirect, ATH §4.4); an empty one is invalid.
        (TokenRequest, {**FULL[TokenRequest], "code": ""}, "code"),
        (
            TokenRequest,
            {k: v for k, v in FULL[TokenRequest].items() if k != "ath_session_id"},
            "ath_session_id",
        ),
        (AuthorizeRequest, {**FULL[AuthorizeRequest], "state": "short"}, "state"),
        (AuthorizeRequest, {**FULL[AuthorizeRequest], "scopes": []}, "scopes"),
        (AuthorizeRequest, {**FULL[AuthorizeRequest], "scopes": ["a b"]}, "scopes.0"),
        (RegisterRequest, {**FULL[RegisterRequest], "requested_providers": []}, "requested_"),
        (RegisterRequest, {**FULL[RegisterRequest], "agent_attestation": "x" * 9000}, "agent_"),
        (RegisterResponse, {**FULL[RegisterResponse], "agent_status": "maybe"}, "agent_status"),
        (RevokeRequest, {"token": ""}, "token"),
        (ErrorResponse, [], "(body)"),
        (ErrorResponse, "{not json", "(body)"),
        (ErrorResponse, b"null", "(body)"),
    ],
)
def test_invalid_input_is_an_invalid_request_error(
    model: type[ATHModel], data: object, field: str
) -> None:
    with pytest.raises(ATHError) as info:
        model.parse(data)
    err = info.value
    assert err.code is ErrorCode.INVALID_REQUEST and err.status == 400
    assert any(e["field"].startswith(field) for e in err.details["errors"])
    assert "x" * 100 not in err.message  # the peer's input is not echoed back


def test_parse_accepts_raw_json() -> None:
    raw = json.dumps(FULL[TokenRequest])
    assert TokenRequest.parse(raw) == TokenRequest.parse(raw.encode())


def test_fuzzed_input_only_ever_raises_invalid_request() -> None:
    rng = random.Random(8259)
    values: list[Any] = [None, True, 1, -1, 1.5, "", "x", "a b", [], {}, ["x"], {"a": 1}, "x" * 300]
    for _ in range(2000):
        model = rng.choice(list(FULL))
        data: Any = json.loads(json.dumps(FULL[model]))
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.2:
                data = rng.choice(values)
                break
            data[rng.choice([*data.keys(), "extra"])] = rng.choice(values)
        raw = json.dumps(data) if rng.random() < 0.5 else data
        try:
            model.parse(raw)
        except ATHError as err:
            assert err.code is ErrorCode.INVALID_REQUEST
            assert err.details["errors"]
