"""Attestation JWTs (ATH §2): what is accepted, and every way one is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from athkit.protocol import (
    ATHError,
    ErrorCode,
    VerificationKey,
    b64url_encode,
    create_attestation,
    generate_private_key,
    key_id,
    load_public_key,
    public_key_to_jwk,
    public_key_to_pem,
    read_unverified_claims,
    verify_attestation,
)

AGENT_ID = "https://agent.example/.well-known/agent.json"
AUDIENCE = "https://shop.example"
NOW = 1_800_000_000

KEY = generate_private_key()
PUBLIC = KEY.public_key()
VKEY = VerificationKey(PUBLIC)


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "https://agent.example",
        "sub": AGENT_ID,
        "aud": AUDIENCE,
        "iat": NOW,
        "exp": NOW + 300,
        "jti": "jti-0123456789",
    }
    for name, value in changes.items():
        if value is _DROP:
            claims.pop(name)
        else:
            claims[name] = value
    return claims


_DROP = object()


def _segment(value: Any) -> str:
    return b64url_encode(json.dumps(value).encode())


def _es_sign(
    claims: dict[str, Any],
    key: ec.EllipticCurvePrivateKey = KEY,
    header: dict[str, Any] | None = None,
) -> str:
    """An ES256-shaped JWS built by hand, so any header or key can be used."""
    head = _segment(header if header is not None else {"alg": "ES256", "typ": "JWT"})
    signing_input = f"{head}.{_segment(claims)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    size = (key.curve.key_size + 7) // 8
    signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return f"{signing_input}.{b64url_encode(signature)}"


def _refused(token: object, key: Any = VKEY, audience: str = AUDIENCE) -> ATHError:
    with pytest.raises(ATHError) as info:
        verify_attestation(token, key, audience=audience, now=NOW)  # type: ignore[arg-type]
    err = info.value
    assert err.code is ErrorCode.INVALID_ATTESTATION
    assert err.status == 401
    assert err.message.startswith("invalid attestation: ")
    return err


def _reason(token: object, key: Any = VKEY, audience: str = AUDIENCE) -> str:
    return str(_refused(token, key, audience).details["reason"])


# --- accepted -------------------------------------------------------------------------------


def test_created_attestation_verifies_and_returns_replay_fields() -> None:
    token = create_attestation(
        KEY, agent_id=AGENT_ID, audience=AUDIENCE, capabilities=["shop:read"], now=NOW
    )
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "typ": "JWT", "kid": key_id(KEY)}
    result = verify_attestation(token, VKEY, audience=AUDIENCE, now=NOW + 10)
    assert result.sub == AGENT_ID
    assert result.iss == "https://agent.example"
    assert result.aud == AUDIENCE
    assert result.iat == NOW and result.exp == NOW + 300  # default lifetime: 5 minutes
    assert len(result.jti) >= 32
    assert result.kid == key_id(KEY)
    assert result.capabilities == ("shop:read",)
    # A plain public key works too (prepared on the fly).
    assert verify_attestation(token, PUBLIC, audience=AUDIENCE, now=NOW).jti == result.jti


def test_every_attestation_has_a_fresh_jti() -> None:
    tokens = [create_attestation(KEY, agent_id=AGENT_ID, audience=AUDIENCE) for _ in range(20)]
    jtis = {verify_attestation(t, VKEY, audience=AUDIENCE).jti for t in tokens}
    assert len(jtis) == 20


def test_lifetime_is_configurable_and_bounded() -> None:
    token = create_attestation(
        KEY, agent_id=AGENT_ID, audience=AUDIENCE, lifetime=timedelta(seconds=60), now=NOW
    )
    assert verify_attestation(token, VKEY, audience=AUDIENCE, now=NOW).exp == NOW + 60
    with pytest.raises(ValueError):
        create_attestation(KEY, agent_id=AGENT_ID, audience=AUDIENCE, lifetime=timedelta(hours=2))
    with pytest.raises(ValueError):
        create_attestation(KEY, agent_id=AGENT_ID, audience=AUDIENCE, lifetime=timedelta(0))


def test_pyjwt_verifies_what_we_create() -> None:
    """Interoperability: a mainstream library reads our tokens as standard ES256 JWTs."""
    token = create_attestation(KEY, agent_id=AGENT_ID, audience=AUDIENCE)
    claims = pyjwt.decode(token, PUBLIC, algorithms=["ES256"], audience=AUDIENCE)
    assert claims["sub"] == AGENT_ID


def test_we_verify_what_pyjwt_creates() -> None:
    token = pyjwt.encode(_claims(), KEY, algorithm="ES256")
    assert verify_attestation(token, VKEY, audience=AUDIENCE, now=NOW).sub == AGENT_ID


def test_trailing_slash_on_audience_is_accepted() -> None:
    token = _es_sign(_claims(aud=AUDIENCE + "/"))
    assert verify_attestation(token, VKEY, audience=AUDIENCE, now=NOW).aud == AUDIENCE + "/"
    token = _es_sign(_claims())
    assert verify_attestation(token, VKEY, audience=AUDIENCE + "/", now=NOW).aud == AUDIENCE


def test_iss_may_be_the_agent_id_itself_or_its_origin() -> None:
    for iss in (
        AGENT_ID,
        "https://agent.example",
        "https://agent.example/",
        "HTTPS://Agent.Example",
    ):
        assert verify_attestation(_es_sign(_claims(iss=iss)), VKEY, audience=AUDIENCE, now=NOW)


def test_iat_within_skew_is_accepted() -> None:
    for iat in (NOW - 300, NOW + 300):
        token = _es_sign(_claims(iat=iat, exp=iat + 600))
        assert verify_attestation(token, VKEY, audience=AUDIENCE, now=NOW).iat == iat


def test_read_unverified_claims() -> None:
    token = create_attestation(KEY, agent_id=AGENT_ID, audience=AUDIENCE)
    assert read_unverified_claims(token)["sub"] == AGENT_ID


# --- malformed ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "a.b.c.d.e", "....", None, 42, b"a.b.c", "x" * 10_000],
)
def test_malformed_token(token: object) -> None:
    assert _reason(token) == "malformed"
    with pytest.raises(ATHError) as info:
        read_unverified_claims(token)  # type: ignore[arg-type]
    assert info.value.details["reason"] == "malformed"


def test_bad_base64() -> None:
    head, payload, signature = _es_sign(_claims()).split(".")
    assert _reason(f"{head}!.{payload}.{signature}") == "bad_base64"
    assert _reason(f"{head}.{payload}=.{signature}") == "bad_base64"
    assert _reason(f"{head}.{payload}.{signature}%") == "bad_base64"
    assert _reason(f"é{head}.{payload}.{signature}") == "bad_base64"
    with pytest.raises(ATHError) as info:
        read_unverified_claims(f"{head}.{payload}*.{signature}")
    assert info.value.details["reason"] == "bad_base64"


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b'"ES256"', b"\xff\xfe", b'{"alg": NaN}', b"{" * 5000]
)
def test_non_json_header(raw: bytes) -> None:
    _, payload, signature = _es_sign(_claims()).split(".")
    assert _reason(f"{b64url_encode(raw)}.{payload}.{signature}") == "bad_json"


def test_non_json_payload_with_valid_signature() -> None:
    head = _segment({"alg": "ES256"})
    for raw in (b"not json", b"[1]", b'{"exp": Infinity}'):
        signing_input = f"{head}.{b64url_encode(raw)}"
        r, s = decode_dss_signature(KEY.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        token = f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
        assert _reason(token) == "bad_json"


# --- algorithm and key confusion --------------------------------------------------------------


def test_alg_none() -> None:
    for alg in ("none", "None", "NONE"):
        assert _reason(f"{_segment({'alg': alg})}.{_segment(_claims())}.") == "bad_algorithm"
    unsigned = pyjwt.encode(_claims(), None, algorithm="none")
    assert _reason(unsigned) == "bad_algorithm"


def test_missing_or_odd_alg() -> None:
    _, payload, signature = _es_sign(_claims()).split(".")
    for header in ({}, {"alg": None}, {"alg": ["ES256"]}, {"alg": "es256"}, {"alg": "ES384"}):
        assert _reason(f"{_segment(header)}.{payload}.{signature}") == "bad_algorithm"


def test_hs256_signed_with_the_public_key_pem_is_refused() -> None:
    """Algorithm confusion: an HMAC keyed with the very bytes a verifier might hold."""
    pem = public_key_to_pem(PUBLIC).encode()
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT'})}.{_segment(_claims())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url_encode(mac)}"
    assert _reason(token) == "bad_algorithm"
    assert _reason(token, PUBLIC) == "bad_algorithm"


def test_hs256_disguised_as_es256_is_refused() -> None:
    pem = public_key_to_pem(PUBLIC).encode()
    signing_input = f"{_segment({'alg': 'ES256'})}.{_segment(_claims())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert _reason(f"{signing_input}.{b64url_encode(mac)}") == "bad_signature"


def test_p384_key_posing_as_es256() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    token = _es_sign(_claims(), key=p384)
    # Signed with a P-384 key and checked against it: the key itself is refused.
    assert _reason(token, p384.public_key()) == "bad_public_key"
    with pytest.raises(ATHError) as info:
        VerificationKey(p384.public_key())
    assert info.value.details["reason"] == "bad_public_key"
    # Checked against the agent's real P-256 key: a 96-byte signature is no ES256 signature.
    assert _reason(token) == "bad_signature"
    # An identity document publishing the P-384 key, as JWK or PEM.
    jwk = {"kty": "EC", "crv": "P-384", "x": "A" * 64, "y": "A" * 64, "alg": "ES256"}
    spki = p384.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for published in (jwk, spki, spki.decode()):
        with pytest.raises(ATHError) as info:
            load_public_key(published)
        assert info.value.code is ErrorCode.INVALID_ATTESTATION
        assert info.value.details["reason"] == "bad_public_key"


def test_rsa_key_posing_as_es256() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_input = f"{_segment({'alg': 'ES256'})}.{_segment(_claims())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{signing_input}.{b64url_encode(signature)}"
    assert _reason(token, key.public_key()) == "bad_public_key"
    assert _reason(token) == "bad_signature"
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "alg": "ES256",
        "n": b64url_encode(numbers.n.to_bytes(256, "big")),
        "e": b64url_encode(numbers.e.to_bytes(3, "big")),
    }
    spki = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for published in (jwk, spki):
        with pytest.raises(ATHError) as info:
            load_public_key(published)
        assert info.value.details["reason"] == "bad_public_key"


def test_garbage_key_objects_are_refused() -> None:
    token = _es_sign(_claims())
    for key in (None, "pem?", public_key_to_jwk(KEY), 42):
        assert _reason(token, key) == "bad_public_key"


def test_crit_header_is_refused() -> None:
    token = _es_sign(_claims(), header={"alg": "ES256", "crit": ["b64"], "b64": False})
    assert _reason(token) == "bad_header"


# --- signature ----------------------------------------------------------------------------------


def test_tampered_payload() -> None:
    head, _, signature = _es_sign(_claims()).split(".")
    forged = _segment(_claims(sub="https://evil.example/.well-known/agent.json"))
    assert _reason(f"{head}.{forged}.{signature}") == "bad_signature"


def test_tampered_header_and_signature() -> None:
    head, payload, signature = _es_sign(_claims()).split(".")
    other_head = _segment({"alg": "ES256", "typ": "JWT", "kid": "other"})
    assert _reason(f"{other_head}.{payload}.{signature}") == "bad_signature"
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[5] ^= 1
    assert _reason(f"{head}.{payload}.{b64url_encode(bytes(raw))}") == "bad_signature"
    assert _reason(f"{head}.{payload}.{b64url_encode(bytes(64))}") == "bad_signature"
    all_ones = b64url_encode(bytes([255]) * 64)
    assert _reason(f"{head}.{payload}.{all_ones}") == "bad_signature"
    assert _reason(f"{head}.{payload}.") == "bad_signature"


def test_signed_by_another_p256_key() -> None:
    assert _reason(_es_sign(_claims(), key=generate_private_key())) == "bad_signature"


def test_der_encoded_signature_is_refused() -> None:
    """JWS wants R || S; a DER signature (what OpenSSL emits) must not slip through."""
    signing_input = f"{_segment({'alg': 'ES256'})}.{_segment(_claims())}"
    der = KEY.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    assert _reason(f"{signing_input}.{b64url_encode(der)}") == "bad_signature"


# --- claims ---------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "aud", "jti", "iat", "sub", "iss"])
def test_missing_claim(claim: str) -> None:
    err = _refused(_es_sign(_claims(**{claim: _DROP})))
    assert err.details["reason"] == f"missing_{claim}"
    assert claim in err.message


@pytest.mark.parametrize("claim", ["jti", "sub", "iss"])
def test_empty_string_claim_counts_as_missing(claim: str) -> None:
    assert _reason(_es_sign(_claims(**{claim: ""}))) == f"missing_{claim}"


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": "tomorrow"},
        {"exp": True},
        {"exp": [NOW]},
        {"iat": "now"},
        {"jti": 12345},
        {"jti": "j" * 257},
        {"sub": ["x"]},
        {"iss": {"a": 1}},
        {"capabilities": "shop:read"},
        {"capabilities": ["ok", 1]},
    ],
)
def test_claim_of_the_wrong_type(changes: dict[str, Any]) -> None:
    assert _reason(_es_sign(_claims(**changes))) == "bad_claim"


def test_non_finite_number_claim() -> None:
    """1e400 is valid JSON that Python reads as infinity; it must not reach int()."""
    head = _segment({"alg": "ES256"})
    raw = json.dumps(_claims()).replace(str(NOW + 300), "1e400").encode()
    signing_input = f"{head}.{b64url_encode(raw)}"
    r, s = decode_dss_signature(KEY.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    token = f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    assert _reason(token) == "bad_claim"


def test_expired() -> None:
    err = _refused(_es_sign(_claims(iat=NOW - 200, exp=NOW - 1)))
    assert err.details["reason"] == "expired"
    assert _reason(_es_sign(_claims(iat=NOW - 200, exp=NOW))) == "expired"


def test_iat_too_far_in_the_past() -> None:
    err = _refused(_es_sign(_claims(iat=NOW - 301, exp=NOW + 60)))
    assert err.details["reason"] == "iat_out_of_range"
    assert "past" in err.message


def test_iat_too_far_in_the_future() -> None:
    err = _refused(_es_sign(_claims(iat=NOW + 301, exp=NOW + 600)))
    assert err.details["reason"] == "iat_out_of_range"
    assert "future" in err.message


def test_lifetime_over_one_hour() -> None:
    assert _reason(_es_sign(_claims(iat=NOW, exp=NOW + 3601))) == "lifetime_too_long"
    assert verify_attestation(
        _es_sign(_claims(iat=NOW, exp=NOW + 3600)), VKEY, audience=AUDIENCE, now=NOW
    )


@pytest.mark.parametrize(
    "aud",
    [
        "https://evil.example",
        "https://shop.example.evil",
        "https://shop.example/ath/token",
        "https://shop.example//",
        "http://shop.example",
        "HTTPS://SHOP.EXAMPLE",
        ["https://shop.example"],
        42,
    ],
)
def test_wrong_audience(aud: object) -> None:
    assert _reason(_es_sign(_claims(aud=aud))) == "wrong_audience"


@pytest.mark.parametrize(
    "iss",
    [
        "https://evil.example",
        "https://agent.example.evil",
        "https://agent.example:8443",
        "http://agent.example",
        "agent.example",
        "https://agent.example/.well-known",
        "https://evil.example/.well-known/agent.json",
    ],
)
def test_iss_not_matching_agent_id(iss: str) -> None:
    assert _reason(_es_sign(_claims(iss=iss))) == "wrong_issuer"


def test_iss_cannot_match_a_sub_that_is_not_a_url() -> None:
    assert _reason(_es_sign(_claims(sub="agent", iss="://"))) == "wrong_issuer"
    assert _reason(_es_sign(_claims(sub="http://[::1/x", iss="http://[::1"))) == "wrong_issuer"


def test_reasons_are_named_in_messages() -> None:
    seen = {
        _refused("a.b").message,
        _refused(_es_sign(_claims(exp=NOW - 5))).message,
        _refused(_es_sign(_claims(aud="https://evil.example"))).message,
    }
    assert len(seen) == 3
    assert any("expired" in m for m in seen)
    assert any("aud" in m for m in seen)


# --- no input raises anything but ATHError ------------------------------------------------------


def _mutations(rng: random.Random, token: str) -> str:
    alphabet = "ABCxyz0189-_.=+/ %\x00é{}\"':,[]"
    choice = rng.randrange(7)
    chars = list(token)
    if choice == 0:
        for _ in range(rng.randint(1, 4)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
    elif choice == 1:
        del chars[rng.randrange(len(chars)) :]
    elif choice == 2:
        pos = rng.randrange(len(chars))
        chars[pos:pos] = rng.choices(alphabet, k=rng.randint(1, 8))
    elif choice == 3:
        parts = token.split(".")
        rng.shuffle(parts)
        return ".".join(parts)
    elif choice == 4:
        parts = token.split(".")
        parts[rng.randrange(3)] = _segment(_random_json(rng, 3))
        return ".".join(parts)
    elif choice == 5:
        header = {"alg": rng.choice(["ES256", "none", "HS256", None, 1])}
        claims = {
            k: _random_json(rng, 2) if rng.random() < 0.4 else v for k, v in _claims().items()
        }
        return _es_sign(claims, header=header)
    else:
        return "".join(rng.choices(alphabet, k=rng.randint(0, 60)))
    return "".join(chars)


def _random_json(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth > 0 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, NOW, NOW + 10**30, 2**63, -(2**63)])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308, NOW + 0.5])
    if kind == 4:
        return rng.choice(["", "ES256", AUDIENCE, AGENT_ID, "x" * 300, "\x00", "é"])
    if kind == 5:
        return rng.choice(["https://[", "http://[::1", "//", "https://agent.example"])
    if kind == 6:
        return [_random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["alg", "exp", "kty", "x"]): _random_json(rng, depth - 1)}


def test_fuzzed_tokens_only_ever_raise_ath_error() -> None:
    rng = random.Random(20260)
    base = _es_sign(_claims())
    outcomes: set[str] = set()
    for _ in range(3000):
        token = _mutations(rng, base)
        for call in (
            lambda t=token: verify_attestation(t, VKEY, audience=AUDIENCE, now=NOW),
            lambda t=token: read_unverified_claims(t),
        ):
            try:
                call()
                outcomes.add("ok")
            except ATHError as err:
                assert err.code is ErrorCode.INVALID_ATTESTATION
                outcomes.add(str(err.details["reason"]))
    # The fuzzer reached deep into the verifier, not just the first check.
    assert {"malformed", "bad_base64", "bad_json", "bad_algorithm", "bad_signature"} <= outcomes
    assert {"bad_claim", "wrong_audience"} & outcomes


def test_fuzzed_public_keys_only_ever_raise_ath_error() -> None:
    rng = random.Random(7638)
    good = public_key_to_jwk(KEY)
    pem = public_key_to_pem(KEY)
    for _ in range(2000):
        source: Any
        kind = rng.randrange(4)
        if kind == 0:
            source = dict(good)
            for _ in range(rng.randint(1, 3)):
                source[rng.choice(["kty", "crv", "x", "y", "d", "alg"])] = _random_json(rng, 2)
        elif kind == 1:
            chars = list(pem)
            for _ in range(rng.randint(1, 5)):
                chars[rng.randrange(len(chars))] = rng.choice("A/+=\n-é")
            source = "".join(chars)
        elif kind == 2:
            source = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 100)))
        else:
            source = _random_json(rng, 3)
        try:
            load_public_key(source)
        except ATHError as err:
            assert err.code is ErrorCode.INVALID_ATTESTATION
            assert err.details["reason"] == "bad_public_key"


def test_der_conversion_matches_cryptography() -> None:
    """The hot path's own DER encoder agrees with pyca's on random and edge-case signatures."""
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from athkit.protocol._attestation import _der_signature

    rng = random.Random(7518)
    edges = [bytes(64), b"\xff" * 64, bytes(31) + b"\x80" + bytes(31) + b"\x01", b"\x7f" * 64]
    randoms = [rng.randbytes(64) for _ in range(2000)]
    for signature in edges + randoms:
        expected = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        assert _der_signature(signature) == expected
