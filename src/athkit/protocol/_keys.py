"""P-256 keys for ES256: generate, save, load, JWK/PEM export and RFC 7638 thumbprints."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from athkit.protocol._b64 import b64url_decode, b64url_encode
from athkit.protocol._errors import ATHError, ErrorCode

PrivateKey = ec.EllipticCurvePrivateKey
PublicKey = ec.EllipticCurvePublicKey

_P256_COORD_BYTES = 32

# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "oct": ("k", "kty"),
    "OKP": ("crv", "kty", "x"),
}


def _key_error(message: str) -> ATHError:
    return ATHError(ErrorCode.INVALID_ATTESTATION, message, details={"reason": "bad_public_key"})


def generate_private_key() -> PrivateKey:
    """A fresh P-256 private key from the operating system's CSPRNG."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_to_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def save_private_key(key: PrivateKey, path: str | os.PathLike[str]) -> Path:
    """Write the key as PEM, readable by its owner only (mode 0600), replacing any old file.

    The file is written under a temporary name created exclusively with mode 0600 and then
    renamed, so the key is never readable by others, not even for a moment.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, private_key_to_pem(key))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def load_private_key(source: str | bytes | os.PathLike[str]) -> PrivateKey:
    """Read a P-256 private key from PEM text/bytes or from a PEM file path."""
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, str) and "-----BEGIN" in source:
        data = source.encode()
    else:
        data = Path(source).read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the private key is not a P-256 (ES256) key")
    return key


def public_key_to_pem(key: PublicKey | PrivateKey) -> str:
    """SubjectPublicKeyInfo PEM of the public half."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint: the required members, sorted, no whitespace, hashed."""
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise ValueError(f"unsupported JWK key type: {kty!r}")
    missing = [m for m in members if not isinstance(jwk.get(m), str)]
    if missing:
        raise ValueError(f"JWK lacks required member(s): {', '.join(missing)}")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def public_key_to_jwk(key: PublicKey | PrivateKey, *, kid: str | None = None) -> dict[str, Any]:
    """The public half as an ES256 JWK, with the RFC 7638 thumbprint as ``kid`` by default."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    numbers = public.public_numbers()
    jwk: dict[str, Any] = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(_P256_COORD_BYTES, "big")),
        "y": b64url_encode(numbers.y.to_bytes(_P256_COORD_BYTES, "big")),
    }
    jwk["kid"] = kid if kid is not None else jwk_thumbprint(jwk)
    jwk["alg"] = "ES256"
    jwk["use"] = "sig"
    return jwk


def key_id(key: PublicKey | PrivateKey) -> str:
    """The default ``kid`` of a key: its RFC 7638 thumbprint."""
    return str(public_key_to_jwk(key)["kid"])


def load_public_key(source: dict[str, Any] | str | bytes) -> PublicKey:
    """Read a peer's P-256 public key from a JWK object or a PEM string.

    Anything else — another curve, RSA, a symmetric key, a private JWK, bad coordinates — is
    refused with ``INVALID_ATTESTATION`` naming what is wrong.
    """
    if isinstance(source, dict):
        return _public_key_from_jwk(source)
    if isinstance(source, str | bytes):
        data = source.encode() if isinstance(source, str) else source
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise _key_error("public key is not a readable PEM public key") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise _key_error("public key is not an elliptic-curve key (ES256 needs P-256)")
        if key.curve.name != "secp256r1":
            raise _key_error(f"public key is on curve {key.curve.name}, ES256 needs P-256")
        return key
    raise _key_error("public key must be a JWK object or a PEM string")


def _public_key_from_jwk(jwk: dict[str, Any]) -> PublicKey:
    if jwk.get("kty") != "EC":
        raise _key_error(f"JWK key type {str(jwk.get('kty'))[:32]!r} is not EC (ES256 needs P-256)")
    if jwk.get("crv") != "P-256":
        raise _key_error(f"JWK curve {str(jwk.get('crv'))[:32]!r} is not P-256")
    if "d" in jwk:
        raise _key_error("JWK carries a private key; publish only the public half")
    alg = jwk.get("alg")
    if alg is not None and alg != "ES256":
        raise _key_error(f"JWK alg {str(alg)[:32]!r} is not ES256")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise _key_error(f"JWK use {str(use)[:32]!r} is not sig")
    x, y = jwk.get("x"), jwk.get("y")
    if not isinstance(x, str) or not isinstance(y, str):
        raise _key_error("JWK lacks the x and y coordinates")
    try:
        xb, yb = b64url_decode(x), b64url_decode(y)
    except ValueError:
        raise _key_error("JWK coordinates are not base64url") from None
    if len(xb) != _P256_COORD_BYTES or len(yb) != _P256_COORD_BYTES:
        raise _key_error("JWK coordinates are not 32 bytes each")
    try:
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(xb, "big"), int.from_bytes(yb, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError:
        raise _key_error("JWK point is not on the P-256 curve") from None
