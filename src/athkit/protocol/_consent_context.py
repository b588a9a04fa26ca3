"""Consent context (ATH adoption levels 2–3): who the agent is, signed by the implementer.

When an ATH implementer (a gateway, or a native service) sends a user's browser to an OAuth
authorization server, it may add an ``ath_context`` request parameter: a compact ES256 JWS that it
signs with its own private key. The authorization server knows the matching public key from the
client's registration, so its consent page can say which agent is asking and which scopes the
service approved for it. Claims:

    iss              the OAuth client_id of the implementer
    aud              the authorization server's issuer URL
    iat, exp         issued-at and expiry; the context lives at most 10 minutes
    jti              random, for logs
    code_challenge   the PKCE challenge of *this* authorization request
    agent            {"agent_id", "name", "developer": {"name", "id"}}
    approved_scopes  the scopes the service approved for the agent (ATH §4.1)

The agent cannot forge a context (it lacks the implementer's key), and because the context names
the request's ``code_challenge`` it cannot be lifted into another authorization request.
:func:`verify_consent_context` raises :class:`ATHError` ``INVALID_REQUEST`` with a distinct
``details["reason"]`` on every failure.
"""

from __future__ import annotations

import hmac
import math
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from athkit.protocol._attestation import _json_segment, _split
from athkit.protocol._errors import ATHError, ErrorCode
from athkit.protocol._keys import PrivateKey, PublicKey, key_id
from athkit.protocol._models import Developer

CONSENT_CONTEXT_TYPE = "ath-consent+jwt"
MAX_CONSENT_CONTEXT_LIFETIME = timedelta(minutes=10)
_MAX_SKEW_SECONDS = 60
_MAX_TOKEN_LENGTH = 8192
_MAX_TEXT = 512
_MAX_SCOPES = 100
_ALGORITHMS = ["ES256"]


@dataclass(frozen=True, slots=True)
class ConsentContext:
    """A verified consent context: the agent, its developer and the scopes the service approved."""

    client_id: str
    audience: str
    code_challenge: str
    agent_id: str
    agent_name: str
    developer_name: str
    developer_id: str
    approved_scopes: tuple[str, ...]
    iat: int
    exp: int
    jti: str | None


def _fail(reason: str, message: str) -> ATHError:
    return ATHError(
        ErrorCode.INVALID_REQUEST,
        f"invalid ath_context: {message}",
        details={"reason": reason},
    )


def create_consent_context(
    private_key: PrivateKey,
    *,
    client_id: str,
    audience: str,
    code_challenge: str,
    agent_id: str,
    agent_name: str,
    developer: Developer | Mapping[str, Any],
    approved_scopes: Iterable[str],
    lifetime: timedelta = timedelta(minutes=5),
    now: float | None = None,
) -> str:
    """Sign the consent context for one authorization request (the implementer's side).

    ``audience`` is the authorization server's issuer URL; ``code_challenge`` the PKCE challenge
    sent in the same request. ``lifetime`` may not exceed 10 minutes.
    """
    if lifetime <= timedelta(0) or lifetime > MAX_CONSENT_CONTEXT_LIFETIME:
        raise ValueError("a consent context lives more than 0 s and at most 10 minutes")
    dev = developer if isinstance(developer, Developer) else Developer.model_validate(developer)
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": secrets.token_urlsafe(16),
        "code_challenge": code_challenge,
        "agent": {
            "agent_id": agent_id,
            "name": agent_name,
            "developer": {"name": dev.name, "id": dev.id},
        },
        "approved_scopes": list(dict.fromkeys(approved_scopes)),
    }
    header = {"alg": "ES256", "typ": CONSENT_CONTEXT_TYPE, "kid": key_id(private_key)}
    # Imported here, as in verify_consent_context: a gateway without a consent signing key, and
    # a process that never checks a context, does not keep joserfc (51 modules, ~2 MB) in memory.
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import ECKey

    return jose_jwt.encode(header, claims, ECKey.import_key(private_key), algorithms=_ALGORITHMS)


def verify_consent_context(
    token: str,
    public_key: PublicKey,
    *,
    client_id: str,
    audience: str,
    code_challenge: str,
    now: float | None = None,
) -> ConsentContext:
    """Check a consent context against the client's key and *this* request; return its claims.

    Order: an ES256 header typed ``ath-consent+jwt``, the signature by ``public_key``, ``iss`` =
    ``client_id``, exact ``aud`` (a trailing ``/`` ignored), ``exp``, ``iat``, lifetime ≤ 10
    minutes, ``code_challenge`` equal to the request's, then the shape of ``agent`` and
    ``approved_scopes``.
    """
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
        raise _fail("malformed", "not a compact JWS of reasonable size")
    try:
        header_b64, _, _ = _split(token)
        header = _json_segment(header_b64, "header")
    except ATHError as exc:
        raise _fail("malformed", exc.message.removeprefix("invalid attestation: ")) from None
    if header.get("alg") != "ES256":
        raise _fail("bad_algorithm", f"alg {header.get('alg')!r} is not allowed; only ES256")
    if "crit" in header:
        raise _fail("bad_header", "critical header parameters are not supported")
    # Explicit typing (RFC 8725 §3.11): no other JWT signed by the same key passes for a context.
    if header.get("typ") != CONSENT_CONTEXT_TYPE:
        raise _fail("bad_type", f"typ must be {CONSENT_CONTEXT_TYPE!r}")
    from joserfc import jwt as jose_jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey

    try:
        decoded = jose_jwt.decode(token, ECKey.import_key(public_key), algorithms=_ALGORITHMS)
    except JoseError as exc:
        if exc.error == "bad_signature":
            raise _fail("bad_signature", "signature does not match the client's key") from None
        raise _fail("malformed", f"token rejected ({exc.error})") from None
    except (ValueError, TypeError, UnicodeError):
        raise _fail("malformed", "payload is not a JSON object") from None
    claims = decoded.claims
    if not isinstance(claims, dict):
        raise _fail("malformed", "payload is not a JSON object")
    return _check_claims(claims, client_id, audience, code_challenge, now)


def _check_claims(
    claims: dict[str, Any],
    client_id: str,
    audience: str,
    code_challenge: str,
    now: float | None,
) -> ConsentContext:
    current = int(now if now is not None else time.time())
    iss = claims.get("iss")
    if not isinstance(iss, str) or not hmac.compare_digest(iss.encode(), client_id.encode()):
        raise _fail("wrong_issuer", "iss is not the client_id of this request")
    aud = claims.get("aud")
    if not isinstance(aud, str) or aud.rstrip("/") != audience.rstrip("/"):
        raise _fail("wrong_audience", f"aud {aud!r} is not this server ({audience})")
    exp = _int_claim(claims, "exp")
    iat = _int_claim(claims, "iat")
    if exp <= current:
        raise _fail("expired", f"expired {current - exp}s ago")
    if iat > current + _MAX_SKEW_SECONDS:
        raise _fail("iat_in_future", f"iat is {iat - current}s in the future")
    if exp - iat > MAX_CONSENT_CONTEXT_LIFETIME.total_seconds():
        raise _fail("lifetime_too_long", f"lives {exp - iat}s, more than 600s")
    challenge = claims.get("code_challenge")
    # Binding to this request: the context names the PKCE challenge it was issued for.
    if not isinstance(challenge, str) or not hmac.compare_digest(
        challenge.encode(), code_challenge.encode()
    ):
        raise _fail("wrong_code_challenge", "it was issued for another authorization request")
    agent = claims.get("agent")
    if not isinstance(agent, dict):
        raise _fail("malformed", "the agent claim is missing or not an object")
    developer = agent.get("developer")
    if not isinstance(developer, dict):
        raise _fail("malformed", "agent.developer is missing or not an object")
    scopes = claims.get("approved_scopes")
    if (
        not isinstance(scopes, list)
        or len(scopes) > _MAX_SCOPES
        or not all(isinstance(s, str) and 0 < len(s) <= _MAX_TEXT for s in scopes)
    ):
        raise _fail("malformed", "approved_scopes is not a list of scope strings")
    jti = claims.get("jti")
    return ConsentContext(
        client_id=client_id,
        audience=aud,
        code_challenge=challenge,
        agent_id=_text(agent, "agent_id", "agent.agent_id"),
        agent_name=_text(agent, "name", "agent.name"),
        developer_name=_text(developer, "name", "agent.developer.name"),
        developer_id=_text(developer, "id", "agent.developer.id"),
        approved_scopes=tuple(dict.fromkeys(scopes)),
        iat=iat,
        exp=exp,
        jti=jti if isinstance(jti, str) else None,
    )


def _text(obj: dict[str, Any], key: str, label: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise _fail("malformed", f"{label} is missing or not a short string")
    return value


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if value is None:
        raise _fail(f"missing_{name}", f"the {name} claim is missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail("malformed", f"the {name} claim is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        # JSON's 1e400 parses as infinity, which int() cannot convert.
        raise _fail("malformed", f"the {name} claim is not a finite number")
    return int(value)
