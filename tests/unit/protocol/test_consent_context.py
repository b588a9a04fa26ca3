"""Consent context: signed by the implementer, bound to one authorization request."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest

from athkit.protocol import (
    ATHError,
    ErrorCode,
    code_challenge_s256,
    create_consent_context,
    generate_code_verifier,
    generate_private_key,
    private_key_to_pem,
    verify_consent_context,
)

ISSUER = "http://127.0.0.1:9000"
CLIENT = "shop-gateway"
KEY = generate_private_key()
CHALLENGE = code_challenge_s256(generate_code_verifier())
DEV = {"name": "Acme Agents", "id": "acme"}


def _make(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "client_id": CLIENT,
        "audience": ISSUER,
        "code_challenge": CHALLENGE,
        "agent_id": "https://agent.example/.well-known/agent.json",
        "agent_name": "Shopping Helper",
        "developer": DEV,
        "approved_scopes": ["orders:read", "orders:write", "orders:read"],
    }
    args.update(overrides)
    key = args.pop("key", KEY)
    return create_consent_context(key, **args)


def _reason(token: str, **overrides: Any) -> str:
    args: dict[str, Any] = {"client_id": CLIENT, "audience": ISSUER, "code_challenge": CHALLENGE}
    args.update(overrides)
    with pytest.raises(ATHError) as info:
        verify_consent_context(token, KEY.public_key(), **args)
    assert info.value.code is ErrorCode.INVALID_REQUEST
    return str(info.value.details["reason"])


def test_round_trip() -> None:
    ctx = verify_consent_context(
        _make(), KEY.public_key(), client_id=CLIENT, audience=ISSUER + "/", code_challenge=CHALLENGE
    )
    assert ctx.agent_name == "Shopping Helper"
    assert ctx.agent_id == "https://agent.example/.well-known/agent.json"
    assert (ctx.developer_name, ctx.developer_id) == ("Acme Agents", "acme")
    assert ctx.approved_scopes == ("orders:read", "orders:write")
    assert ctx.exp - ctx.iat == 300


def test_forged_by_another_key() -> None:
    assert _reason(_make(key=generate_private_key())) == "bad_signature"


def test_lifted_into_another_request() -> None:
    other = code_challenge_s256(generate_code_verifier())
    assert _reason(_make(), code_challenge=other) == "wrong_code_challenge"


def test_other_client_or_audience() -> None:
    assert _reason(_make(), client_id="someone-else") == "wrong_issuer"
    assert _reason(_make(audience="http://127.0.0.1:9001")) == "wrong_audience"


def test_expired() -> None:
    assert _reason(_make(now=time.time() - 700)) == "expired"


def test_lifetime_limits() -> None:
    with pytest.raises(ValueError):
        _make(lifetime=timedelta(minutes=11))
    now = int(time.time())
    claims = {
        "iss": CLIENT,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 3600,
        "code_challenge": CHALLENGE,
        "agent": {"agent_id": "a", "name": "n", "developer": DEV},
        "approved_scopes": [],
    }
    long_lived = pyjwt.encode(
        claims, private_key_to_pem(KEY), algorithm="ES256", headers={"typ": "ath-consent+jwt"}
    )
    assert _reason(long_lived) == "lifetime_too_long"


def test_other_algorithms_and_garbage() -> None:
    now = int(time.time())
    claims = {"iss": CLIENT, "aud": ISSUER, "iat": now, "exp": now + 60}
    hs = pyjwt.encode(claims, "k" * 32, algorithm="HS256")
    assert _reason(hs) == "bad_algorithm"
    for junk in ["", "a.b", "a.b.c", "x" * 9000]:
        assert _reason(junk) == "malformed"


def test_bad_shapes_are_refused() -> None:
    now = int(time.time())
    base = {
        "iss": CLIENT,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "code_challenge": CHALLENGE,
        "agent": {"agent_id": "a", "name": "n", "developer": DEV},
        "approved_scopes": ["x"],
    }
    pem = private_key_to_pem(KEY)
    for field, value in [
        ("agent", "not-an-object"),
        ("approved_scopes", "x y"),
        ("agent", {"agent_id": "a", "name": "", "developer": DEV}),
        ("agent", {"agent_id": "a", "name": "n"}),
    ]:
        token = pyjwt.encode(
            {**base, field: value}, pem, algorithm="ES256", headers={"typ": "ath-consent+jwt"}
        )
        assert _reason(token) == "malformed"
    # A JWT of another type signed by the same key (an attestation, say) is not a context.
    assert _reason(pyjwt.encode(base, pem, algorithm="ES256")) == "bad_type"
