"""Agent attestations (ATH §2): short-lived ES256 JWTs that prove an agent holds its key.

:func:`create_attestation` signs one; :func:`verify_attestation` checks one against a public key
the caller already trusts (fetched from the agent's identity document). Verification order
follows ATH §2: ES256 signature, ``exp``, exact ``aud``, ``iat`` within the allowed skew; the
``jti`` and ``exp`` come back for the caller's replay check, ``sub`` for its identity match.

Every failure is an :class:`ATHError` with code ``INVALID_ATTESTATION``, a message naming what is
wrong, and one of these ``details["reason"]`` values:

    malformed          not a string, longer than 8 KiB, or not three dot-separated segments
    bad_base64         a segment is not unpadded base64url
    bad_json           the header or payload is not a JSON object
    bad_algorithm      ``alg`` is anything but ES256 (``none``, HS256, RS256, ES384, ...)
    bad_header         the header carries ``crit`` extensions
    bad_public_key     the trusted key is not a P-256 key (raised by the key loaders too)
    bad_signature      the signature is not 64 bytes or does not verify with the key
    missing_<claim>    ``exp``, ``aud``, ``iat``, ``jti``, ``sub`` or ``iss`` is absent
    bad_claim          a claim has the wrong type (non-numeric ``exp``, list ``capabilities``...)
    expired            ``exp`` has passed
    wrong_audience     ``aud`` is not exactly this verifier's URL
    iat_out_of_range   ``iat`` is more than the allowed skew (5 min) in the past or future
    lifetime_too_long  ``exp - iat`` exceeds one hour (our decision, ATH §2)
    wrong_issuer       ``iss`` is neither the agent_id nor its origin (our decision, ATH §2)

The signature is checked with ``cryptography`` directly rather than through a JOSE library: the
only algorithm is ES256, and bench/attestation.py shows the library's overhead costs a third of
the verification rate (see bench/RESULTS.md).
"""

from __future__ import annotations

import binascii
import functools
import json
import math
import secrets
import time
from datetime import timedelta
from json.scanner import make_scanner
from typing import Any, NamedTuple, NoReturn, cast
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from athkit.protocol._b64 import _URL_TO_STRICT_STD, b64url_decode
from athkit.protocol._errors import ATHError, ErrorCode
from athkit.protocol._keys import PrivateKey, PublicKey, key_id

DEFAULT_LIFETIME = timedelta(minutes=5)
MAX_CLOCK_SKEW_SECONDS = 300  # ATH §2: iat within 5 minutes of now
MAX_LIFETIME_SECONDS = 3600  # our decision: attestations living longer than 1 hour are refused
MAX_TOKEN_LENGTH = 8192  # far above any honest attestation; bounds the work hostile input causes
_MAX_JTI_LENGTH = 256
_ES256_SIGNATURE_BYTES = 64  # RFC 7518 §3.4: R || S, 32 bytes each
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


class VerifiedAttestation(NamedTuple):
    """What a valid attestation says. ``sub`` must still be matched by the caller.

    (A named tuple rather than a frozen dataclass: built on every verification, it is five
    times cheaper to create, and just as immutable.)
    """

    sub: str
    iss: str
    aud: str
    jti: str
    iat: int
    exp: int
    kid: str | None
    capabilities: tuple[str, ...] | None


class VerificationKey:
    """A trusted agent public key, checked once for repeated verification.

    Refuses anything but a P-256 public key (``bad_public_key``), so a P-384 or RSA key can
    never stand in for ES256.
    """

    __slots__ = ("public_key",)

    def __init__(self, public_key: PublicKey) -> None:
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            _fail("bad_public_key", "the trusted key is not an elliptic-curve public key")
        if public_key.curve.name != "secp256r1":
            _fail("bad_public_key", f"key is on {public_key.curve.name}, ES256 needs P-256")
        self.public_key = public_key


def _fail(reason: str, message: str) -> NoReturn:
    raise ATHError(
        ErrorCode.INVALID_ATTESTATION,
        f"invalid attestation: {message}",
        details={"reason": reason},
    )


@functools.lru_cache(maxsize=1024)
def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL, lower-cased as RFC 6454 compares origins.

    Raises ``ValueError`` when ``url`` has no scheme or host.
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower()
    if not parts.scheme or not host:
        raise ValueError(f"not an absolute URL: {url!r}")
    return f"{parts.scheme.lower()}://{host}"


def create_attestation(
    private_key: PrivateKey,
    *,
    agent_id: str,
    audience: str,
    lifetime: timedelta = DEFAULT_LIFETIME,
    capabilities: list[str] | None = None,
    issuer: str | None = None,
    kid: str | None = None,
    now: float | None = None,
) -> str:
    """Sign a fresh attestation for ``audience`` (a new random ``jti`` every call).

    ``iss`` defaults to the origin of ``agent_id``; ``kid`` to the key's RFC 7638 thumbprint.
    ``lifetime`` must be positive and at most one hour, the longest a verifier accepts.
    """
    seconds = int(lifetime.total_seconds())
    if not 0 < seconds <= MAX_LIFETIME_SECONDS:
        raise ValueError(f"lifetime must be between 1 s and {MAX_LIFETIME_SECONDS} s")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer if issuer is not None else origin_of(agent_id),
        "sub": agent_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + seconds,
        "jti": secrets.token_urlsafe(24),
    }
    if capabilities is not None:
        claims["capabilities"] = list(capabilities)
    header = {"alg": "ES256", "typ": "JWT", "kid": kid if kid is not None else key_id(private_key)}
    # Imported here: only signers need joserfc (51 modules, ~2 MB); verification below is our own.
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import ECKey

    return jose_jwt.encode(header, claims, ECKey.import_key(private_key), algorithms=["ES256"])


def read_unverified_claims(token: str) -> dict[str, Any]:
    """The claims of an attestation *without* checking anything.

    Only for routing (which agent's document to fetch); never trust the result.
    """
    _, payload, _ = _split(token)
    return _json_object(_decode_segment(payload, "payload"), "payload")


def verify_attestation(
    token: str,
    key: VerificationKey | PublicKey,
    *,
    audience: str,
    now: float | None = None,
    max_clock_skew: int = MAX_CLOCK_SKEW_SECONDS,
) -> VerifiedAttestation:
    """Check an attestation's signature and claims; return them for the replay and sub checks.

    ``audience`` is the one exact value accepted (one trailing ``/`` on either side is ignored).
    Pass a :class:`VerificationKey` prepared once when verifying many tokens with one key.
    """
    prepared = key if isinstance(key, VerificationKey) else VerificationKey(key)
    if type(token) is not str or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        _split(token)  # off the common shape: _split names the reason (or accepts a str subclass)
    header_b64, payload_b64, signature_b64 = token.split(".")
    kid = _checked_header(header_b64)
    signing_input, payload, signature = _decode_body(token, payload_b64, signature_b64)
    if len(signature) != _ES256_SIGNATURE_BYTES:
        _fail("bad_signature", f"an ES256 signature is 64 bytes, this one is {len(signature)}")
    try:
        prepared.public_key.verify(_der_signature(signature), signing_input, _ECDSA_SHA256)
    except InvalidSignature:
        _fail("bad_signature", "signature does not verify with the agent's key")
    claims = _json_object(payload, "payload")
    return _check_claims(claims, kid, audience, now, max_clock_skew)


def _der_signature(signature: bytes) -> bytes:
    """RFC 7518 §3.4 ``R || S`` (32 bytes each) as the DER ``SEQUENCE {INTEGER r, INTEGER s}``
    that OpenSSL verifies; byte for byte what ``encode_dss_signature`` gives, built faster.
    """
    r = signature[:32].lstrip(b"\0")
    s = signature[32:].lstrip(b"\0")
    # DER INTEGERs are minimal and signed: a zero byte in front of a set high bit, 0 as 00.
    if not r or r[0] & 0x80:
        r = b"\0" + r
    if not s or s[0] & 0x80:
        s = b"\0" + s
    return b"0%c\x02%c%s\x02%c%s" % (len(r) + len(s) + 4, len(r), r, len(s), s)


def _decode_body(token: str, payload_b64: str, signature_b64: str) -> tuple[bytes, bytes, bytes]:
    """The signing input, payload and signature of a split token, in one pass (the hot path).

    Same rules as :func:`b64url_decode`: ASCII only, no padding, no ``+`` or ``/``.
    """
    try:
        raw = token.encode("ascii")
        _, payload, signature = raw.translate(_URL_TO_STRICT_STD).split(b".")
        return (
            raw[: raw.rindex(b".")],
            binascii.a2b_base64(payload + b"=" * (-len(payload) % 4), strict_mode=True),
            binascii.a2b_base64(signature + b"=" * (-len(signature) % 4), strict_mode=True),
        )
    except (ValueError, binascii.Error):
        # Slow path, only to name the culprit. The header passed _checked_header already.
        _decode_segment(payload_b64, "payload")
        _decode_segment(signature_b64, "signature")
        _fail("bad_base64", "payload or signature is not base64url")


# An agent sends the same header with every attestation, so the checked result is remembered
# (a pure function of the segment; failures are never cached). Bounded against hostile churn.
@functools.lru_cache(maxsize=512)
def _checked_header(header_b64: str) -> str | None:
    """Decode and check a JWS header; return its ``kid``."""
    header = _json_object(_decode_segment(header_b64, "header"), "header")
    alg = header.get("alg")
    # ATH §2: ES256 only; never none, HMAC or another curve's algorithm.
    if alg != "ES256":
        _fail("bad_algorithm", f"alg {str(alg)[:32]!r} is not allowed; only ES256 is accepted")
    if "crit" in header:
        _fail("bad_header", "critical header parameters are not supported")
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


def _check_claims(
    claims: dict[str, Any],
    kid: str | None,
    audience: str,
    now: float | None,
    max_clock_skew: int,
) -> VerifiedAttestation:
    # Hot path: each claim is read with a cheap exact-type test; the _int_claim/_str_claim
    # helpers run only for odd values, to accept floats or raise the precise reason.
    current = int(now if now is not None else time.time())
    # ATH §2 order: exp, aud, iat, then jti for the caller's replay store.
    exp = claims.get("exp")
    if type(exp) is not int:
        exp = _int_claim(claims, "exp")
    if exp <= current:
        _fail("expired", f"expired {current - exp}s ago")
    aud = claims.get("aud")
    if aud is None:
        _fail("missing_aud", "the aud claim is missing")
    # Our decision (ATH §2): exactly the verifier's URL; one trailing "/" is not a difference.
    if aud != audience and (
        type(aud) is not str or aud.removesuffix("/") != audience.removesuffix("/")
    ):
        _fail("wrong_audience", f"aud {str(aud)[:200]!r} is not this endpoint ({audience})")
    iat = claims.get("iat")
    if type(iat) is not int:
        iat = _int_claim(claims, "iat")
    if iat > current + max_clock_skew:
        _fail(
            "iat_out_of_range", f"iat is {iat - current}s in the future (limit {max_clock_skew}s)"
        )
    if iat < current - max_clock_skew:
        _fail("iat_out_of_range", f"iat is {current - iat}s in the past (limit {max_clock_skew}s)")
    if exp - iat > MAX_LIFETIME_SECONDS:
        _fail("lifetime_too_long", f"lives {exp - iat}s, more than {MAX_LIFETIME_SECONDS}s")
    jti = claims.get("jti")
    if type(jti) is not str or not jti:
        jti = _str_claim(claims, "jti")
    if len(jti) > _MAX_JTI_LENGTH:
        _fail("bad_claim", f"the jti claim is longer than {_MAX_JTI_LENGTH} characters")
    sub = claims.get("sub")
    if type(sub) is not str or not sub:
        sub = _str_claim(claims, "sub")
    iss = claims.get("iss")
    if type(iss) is not str or not iss:
        iss = _str_claim(claims, "iss")
    if not _issuer_matches(iss, sub):
        _fail("wrong_issuer", f"iss {iss[:200]!r} is neither the agent_id nor its origin")
    caps = claims.get("capabilities")
    capabilities: tuple[str, ...] | None = None
    if caps is not None:
        if type(caps) is not list or not all(type(c) is str for c in caps):
            _fail("bad_claim", "capabilities is not a list of strings")
        capabilities = tuple(caps)
    return VerifiedAttestation(sub, iss, aud, jti, iat, exp, kid, capabilities)


@functools.lru_cache(maxsize=1024)
def _issuer_matches(iss: str, agent_id: str) -> bool:
    """Our decision (ATH §2): ``iss`` is the agent_id itself, or its origin (one ``/`` allowed)."""
    if iss == agent_id:
        return True
    try:
        return iss.removesuffix("/").lower() == origin_of(agent_id)
    except ValueError:
        return False


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if value is None:
        _fail(f"missing_{name}", f"the {name} claim is missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail("bad_claim", f"the {name} claim is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        _fail("bad_claim", f"the {name} claim is not a finite number")
    return int(value)


def _str_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if value is None or value == "":
        _fail(f"missing_{name}", f"the {name} claim is missing")
    if not isinstance(value, str):
        _fail("bad_claim", f"the {name} claim is not a string")
    return value


def _split(token: str) -> tuple[str, str, str]:
    if not isinstance(token, str):
        _fail("malformed", "token is not a string")
    if len(token) > MAX_TOKEN_LENGTH:
        _fail("malformed", f"token is longer than {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) != 3:
        _fail("malformed", f"a JWS has 3 segments, this has {len(parts)}")
    return parts[0], parts[1], parts[2]


def _decode_segment(segment: str, name: str) -> bytes:
    try:
        return b64url_decode(segment)
    except ValueError:
        _fail("bad_base64", f"{name} is not base64url")


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads(..., parse_constant=...) would build a decoder per call. RFC 8259 JSON
# only: UTF-8, and no NaN or Infinity (which Python's json accepts by default).
_JSON = json.JSONDecoder(parse_constant=_reject_constant)
_SCAN_ONCE = make_scanner(cast(Any, _JSON))  # typeshed types the context oddly


def _json_object(raw: bytes, name: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        # Hot path: the C scanner alone, without decode()'s two whitespace regex passes. When
        # it consumes the whole text the result is exactly what decode() returns; otherwise
        # (whitespace around the value, or an error) decode() decides.
        try:
            value, end = _SCAN_ONCE(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            value = _JSON.decode(text)
    except (ValueError, RecursionError):
        _fail("bad_json", f"{name} is not JSON")
    if not isinstance(value, dict):
        _fail("bad_json", f"{name} is not a JSON object")
    return value


def _json_segment(segment: str, name: str) -> dict[str, Any]:
    """A base64url segment holding a JSON object (shared with the consent-context verifier)."""
    return _json_object(_decode_segment(segment, name), name)
