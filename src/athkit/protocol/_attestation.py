"""Agent attestations (ATH §2): short-lived ES256 JWTs that prove an agent holds its key.

:func:`create_attestation` signs one; :func:`verify_attestation` checks one against a public key
the caller already trusts (fetched from the agent's identity document). Verification order
follows ATH §2: ES256 signature, ``exp``, exact ``aud``, ``iat`` within the allowed skew; the
``jti`` and ``exp`` come back for the caller's replay check, ``sub`` for its identity match.
Every failure is an :class:`ATHError` with code ``INVALID_ATTESTATION`` and a distinct
``details["reason"]``.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from athkit.protocol._b64 import b64url_decode
from athkit.protocol._errors import ATHError, ErrorCode
from athkit.protocol._keys import PrivateKey, PublicKey, key_id

DEFAULT_LIFETIME = timedelta(minutes=5)
MAX_CLOCK_SKEW_SECONDS = 300  # ATH §2: iat within 5 minutes of now
MAX_LIFETIME_SECONDS = 3600  # our decision: attestations living longer than 1 hour are refused
_ALGORITHMS = ["ES256"]


@dataclass(frozen=True, slots=True)
class VerifiedAttestation:
    """What a valid attestation says. ``sub`` must still be matched by the caller."""

    sub: str
    iss: str
    aud: str
    jti: str
    iat: int
    exp: int
    kid: str | None
    capabilities: tuple[str, ...] | None


class VerificationKey:
    """A trusted agent public key, prepared once for repeated verification."""

    __slots__ = ("_jose", "public_key")

    def __init__(self, public_key: PublicKey) -> None:
        if public_key.curve.name != "secp256r1":
            raise _fail("bad_public_key", f"key is on {public_key.curve.name}, ES256 needs P-256")
        self.public_key = public_key
        self._jose = ECKey.import_key(public_key)


def _fail(reason: str, message: str) -> ATHError:
    return ATHError(
        ErrorCode.INVALID_ATTESTATION,
        f"invalid attestation: {message}",
        details={"reason": reason},
    )


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased as RFC 6454 compares origins."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


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
    """
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer if issuer is not None else origin_of(agent_id),
        "sub": agent_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": secrets.token_urlsafe(24),
    }
    if capabilities is not None:
        claims["capabilities"] = list(capabilities)
    header = {"alg": "ES256", "typ": "JWT", "kid": kid if kid is not None else key_id(private_key)}
    return jose_jwt.encode(header, claims, ECKey.import_key(private_key), algorithms=_ALGORITHMS)


def read_unverified_claims(token: str) -> dict[str, Any]:
    """The claims of an attestation *without* checking anything.

    Only for routing (which agent's document to fetch); never trust the result.
    """
    _, payload, _ = _split(token)
    return _json_segment(payload, "payload")


def verify_attestation(
    token: str,
    key: VerificationKey | PublicKey,
    *,
    audience: str,
    now: float | None = None,
    max_clock_skew: int = MAX_CLOCK_SKEW_SECONDS,
) -> VerifiedAttestation:
    """Check an attestation's signature and claims; return them for the replay and sub checks.

    ``audience`` is the one exact value accepted (a trailing ``/`` on either side is ignored).
    """
    if not isinstance(token, str):
        raise _fail("malformed", "token is not a string")
    header_b64, _, _ = _split(token)
    header = _json_segment(header_b64, "header")
    alg = header.get("alg")
    if alg != "ES256":
        raise _fail("bad_algorithm", f"alg {alg!r} is not allowed; only ES256 is accepted")
    if "crit" in header:
        raise _fail("bad_header", "critical header parameters are not supported")
    prepared = key if isinstance(key, VerificationKey) else VerificationKey(key)
    try:
        decoded = jose_jwt.decode(token, prepared._jose, algorithms=_ALGORITHMS)
    except JoseError as exc:
        if exc.error == "bad_signature":
            raise _fail("bad_signature", "signature does not verify with the agent's key") from None
        raise _fail("malformed", f"token rejected ({exc.error})") from None
    except (ValueError, TypeError, UnicodeError):
        raise _fail("malformed", "token payload is not a JSON object") from None
    claims = decoded.claims
    if not isinstance(claims, dict):
        raise _fail("malformed", "payload is not a JSON object")
    return _check_claims(claims, header, audience, now, max_clock_skew)


def _check_claims(
    claims: dict[str, Any],
    header: dict[str, Any],
    audience: str,
    now: float | None,
    max_clock_skew: int,
) -> VerifiedAttestation:
    current = int(now if now is not None else time.time())
    exp = _int_claim(claims, "exp")
    # ATH §2 order: exp, aud, iat, then jti for the caller's replay store.
    if exp <= current:
        raise _fail("expired", f"expired {current - exp}s ago")
    aud = claims.get("aud")
    if aud is None:
        raise _fail("missing_aud", "the aud claim is missing")
    if not isinstance(aud, str) or aud.rstrip("/") != audience.rstrip("/"):
        raise _fail("wrong_audience", f"aud {aud!r} is not this endpoint ({audience})")
    iat = _int_claim(claims, "iat")
    if abs(current - iat) > max_clock_skew:
        raise _fail(
            "iat_out_of_range", f"iat is {current - iat}s from now (limit {max_clock_skew}s)"
        )
    if exp - iat > MAX_LIFETIME_SECONDS:
        raise _fail("lifetime_too_long", f"lives {exp - iat}s, more than {MAX_LIFETIME_SECONDS}s")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _fail("missing_jti", "the jti claim is missing")
    if len(jti) > 256:
        raise _fail("malformed", "the jti claim is longer than 256 characters")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise _fail("missing_sub", "the sub claim is missing")
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise _fail("missing_iss", "the iss claim is missing")
    # Our decision (ATH §2): iss is the origin of agent_id, or agent_id itself.
    if iss != sub and iss.rstrip("/") != origin_of(sub):
        raise _fail("wrong_issuer", f"iss {iss!r} is neither the agent_id nor its origin")
    caps = claims.get("capabilities")
    capabilities: tuple[str, ...] | None = None
    if caps is not None:
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise _fail("malformed", "capabilities is not a list of strings")
        capabilities = tuple(caps)
    kid = header.get("kid")
    return VerifiedAttestation(
        sub=sub,
        iss=iss,
        aud=aud,
        jti=jti,
        iat=iat,
        exp=exp,
        kid=kid if isinstance(kid, str) else None,
        capabilities=capabilities,
    )


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if value is None:
        raise _fail(f"missing_{name}", f"the {name} claim is missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail("malformed", f"the {name} claim is not a number")
    return int(value)


def _split(token: str) -> tuple[str, str, str]:
    if not isinstance(token, str):
        raise _fail("malformed", "token is not a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise _fail("malformed", f"a JWS has 3 segments, this has {len(parts)}")
    return parts[0], parts[1], parts[2]


def _json_segment(segment: str, name: str) -> dict[str, Any]:
    try:
        raw = b64url_decode(segment)
    except ValueError:
        raise _fail("malformed", f"{name} is not base64url") from None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _fail("malformed", f"{name} is not JSON") from None
    if not isinstance(value, dict):
        raise _fail("malformed", f"{name} is not a JSON object")
    return value
