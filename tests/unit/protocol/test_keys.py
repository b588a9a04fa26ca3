"""P-256 keys: generation, PEM files, JWK export/import, RFC 7638 thumbprints."""

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from athkit.protocol import (
    ATHError,
    ErrorCode,
    b64url_decode,
    b64url_encode,
    generate_private_key,
    jwk_thumbprint,
    key_id,
    load_private_key,
    load_public_key,
    private_key_to_pem,
    public_key_to_jwk,
    public_key_to_pem,
    save_private_key,
)

# RFC 7638 §3.1
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _bad_key(source: object) -> ATHError:
    with pytest.raises(ATHError) as info:
        load_public_key(source)  # type: ignore[arg-type]
    err = info.value
    assert err.code is ErrorCode.INVALID_ATTESTATION
    assert err.details["reason"] == "bad_public_key"
    return err


def test_rfc7638_thumbprint_example() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    # Only the required members count.
    bare = {k: RFC7638_JWK[k] for k in ("kty", "n", "e")}
    assert jwk_thumbprint(bare) == RFC7638_THUMBPRINT


def test_thumbprint_refuses_incomplete_jwk() -> None:
    with pytest.raises(ValueError):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "AA"})
    with pytest.raises(ValueError):
        jwk_thumbprint({"kty": "nope"})


def test_save_writes_owner_only_pem_and_load_roundtrips(tmp_path: Path) -> None:
    key = generate_private_key()
    path = save_private_key(key, tmp_path / "keys" / "agent.pem")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    for source in (path, str(path), path.read_bytes(), path.read_text()):
        loaded = load_private_key(source)
        assert loaded.private_numbers() == key.private_numbers()
    # Replacing an existing, more open file still leaves it 0600.
    path.chmod(0o644)
    save_private_key(generate_private_key(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_load_private_key_refuses_other_keys(tmp_path: Path) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    pem = p384.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="P-256"):
        load_private_key(pem)
    with pytest.raises(ValueError):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


def test_jwk_export_import_roundtrip() -> None:
    key = generate_private_key()
    jwk = public_key_to_jwk(key)
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in jwk
    assert load_public_key(jwk).public_numbers() == key.public_key().public_numbers()
    assert public_key_to_jwk(key.public_key()) == jwk
    assert public_key_to_jwk(key, kid="k1")["kid"] == "k1"


def test_kid_defaults_to_rfc7638_thumbprint() -> None:
    key = generate_private_key()
    jwk = public_key_to_jwk(key)
    required = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    assert jwk["kid"] == jwk_thumbprint(required) == key_id(key) == key_id(key.public_key())
    assert key_id(generate_private_key()) != key_id(key)


def test_pem_export_import() -> None:
    key = generate_private_key()
    pem = public_key_to_pem(key)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert pem == public_key_to_pem(key.public_key())
    assert load_public_key(pem).public_numbers() == key.public_key().public_numbers()
    assert load_public_key(pem.encode()).public_numbers() == key.public_key().public_numbers()
    assert load_private_key(private_key_to_pem(key)).private_numbers() == key.private_numbers()


def test_private_jwk_refused() -> None:
    key = generate_private_key()
    jwk = public_key_to_jwk(key)
    jwk["d"] = b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))
    assert "private" in _bad_key(jwk).message


def test_off_curve_point_refused() -> None:
    jwk = public_key_to_jwk(generate_private_key())
    y = int.from_bytes(b64url_decode(jwk["y"]), "big")
    jwk["y"] = b64url_encode(((y + 1) % 2**256).to_bytes(32, "big"))
    assert "curve" in _bad_key(jwk).message


def test_other_key_types_and_curves_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    _bad_key(p384.public_bytes(serialization.Encoding.PEM, spki))
    _bad_key(rsa_key.public_bytes(serialization.Encoding.PEM, spki).decode())
    _bad_key(RFC7638_JWK)
    _bad_key({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"})
    _bad_key({"kty": "oct", "k": "c2VjcmV0"})


@pytest.mark.parametrize(
    "source",
    [
        "",
        "not a key",
        b"\x00\xff",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        {},
        {"kty": "EC", "crv": "P-256"},
        {"kty": "EC", "crv": "P-256", "x": 1, "y": 2},
        {"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "A" * 43},
        {"kty": ["EC"], "crv": {}, "x": None},
        None,
        42,
        ["EC"],
    ],
)
def test_garbage_is_refused_with_ath_error(source: object) -> None:
    _bad_key(source)


def test_jwk_with_wrong_alg_refused() -> None:
    jwk = public_key_to_jwk(generate_private_key())
    jwk["alg"] = "HS256"
    _bad_key(jwk)


def test_jwk_for_encryption_refused() -> None:
    jwk = public_key_to_jwk(generate_private_key())
    jwk["use"] = "enc"
    _bad_key(jwk)
