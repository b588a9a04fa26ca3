"""The one error type of athkit, and every ATH error code.

Each code, its HTTP status, and when it is raised. The statuses of the codes the protocol lists
follow the specification's error table exactly (ATH §7); the codes marked "(ours)" are our
additions for cases the table lacks:

    INVALID_REQUEST           400  body malformed or failing the schema (ours)
    INVALID_ATTESTATION       401  attestation JWT unreadable, badly signed, expired, wrong aud/iss,
                                   replayed jti, or identity document unusable
    INVALID_CLIENT            401  wrong client_id / client_secret (ours)
    AGENT_NOT_REGISTERED      403  no registration for this agent or client_id
    AGENT_UNAPPROVED          403  registration pending, denied, suspended or expired
    AGENT_ALREADY_REGISTERED  409  a second registration of the same agent_id (ours)
    PROVIDER_NOT_APPROVED     403  agent not approved for the requested provider
    SCOPE_NOT_APPROVED        403  a requested scope is outside the approved ones, or a proxied
                                   call matches no scope of the token
    SESSION_NOT_FOUND         400  unknown, foreign or already-consumed ATH session, wrong ATH code
    SESSION_EXPIRED           400  the ATH session outlived its 10 minutes
    STATE_MISMATCH            400  OAuth state or browser binding did not match at callback
    TOKEN_INVALID             401  access token unknown or malformed, or no scope intersection
    TOKEN_EXPIRED             401  access token past its lifetime
    TOKEN_REVOKED             401  access token revoked (by agent, user, operator or suspension)
    AGENT_IDENTITY_MISMATCH   403  attestation sub or X-ATH-Agent-ID differs from the registration
    PROVIDER_MISMATCH         403  token used on another provider's proxy path
    USER_DENIED               403  the user refused consent
    OAUTH_ERROR               502  the provider's OAuth server failed or refused
    RATE_LIMITED              429  too many requests from this agent (ours)
    UPSTREAM_UNAVAILABLE      502  the proxied upstream could not be reached (ours)
    UPSTREAM_TIMEOUT          504  the proxied upstream did not answer in time (ours)
    INTERNAL_ERROR            500  a bug, or a backing store that failed (fail closed)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Every error code an ATH endpoint may answer."""

    INVALID_REQUEST = "INVALID_REQUEST"
    INVALID_ATTESTATION = "INVALID_ATTESTATION"
    INVALID_CLIENT = "INVALID_CLIENT"
    AGENT_NOT_REGISTERED = "AGENT_NOT_REGISTERED"
    AGENT_UNAPPROVED = "AGENT_UNAPPROVED"
    AGENT_ALREADY_REGISTERED = "AGENT_ALREADY_REGISTERED"
    PROVIDER_NOT_APPROVED = "PROVIDER_NOT_APPROVED"
    SCOPE_NOT_APPROVED = "SCOPE_NOT_APPROVED"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_EXPIRED = "SESSION_EXPIRED"
    STATE_MISMATCH = "STATE_MISMATCH"
    TOKEN_INVALID = "TOKEN_INVALID"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    TOKEN_REVOKED = "TOKEN_REVOKED"
    AGENT_IDENTITY_MISMATCH = "AGENT_IDENTITY_MISMATCH"
    PROVIDER_MISMATCH = "PROVIDER_MISMATCH"
    USER_DENIED = "USER_DENIED"
    OAUTH_ERROR = "OAUTH_ERROR"
    RATE_LIMITED = "RATE_LIMITED"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    INTERNAL_ERROR = "INTERNAL_ERROR"

    @property
    def http_status(self) -> int:
        """The HTTP status this code is answered with."""
        return _STATUS[self]


_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.INVALID_ATTESTATION: 401,
    ErrorCode.INVALID_CLIENT: 401,
    ErrorCode.AGENT_NOT_REGISTERED: 403,
    ErrorCode.AGENT_UNAPPROVED: 403,
    ErrorCode.AGENT_ALREADY_REGISTERED: 409,
    ErrorCode.PROVIDER_NOT_APPROVED: 403,
    ErrorCode.SCOPE_NOT_APPROVED: 403,
    ErrorCode.SESSION_NOT_FOUND: 400,
    ErrorCode.SESSION_EXPIRED: 400,
    ErrorCode.STATE_MISMATCH: 400,
    ErrorCode.TOKEN_INVALID: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.TOKEN_REVOKED: 401,
    ErrorCode.AGENT_IDENTITY_MISMATCH: 403,
    ErrorCode.PROVIDER_MISMATCH: 403,
    ErrorCode.USER_DENIED: 403,
    ErrorCode.OAUTH_ERROR: 502,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UPSTREAM_UNAVAILABLE: 502,
    ErrorCode.UPSTREAM_TIMEOUT: 504,
    ErrorCode.INTERNAL_ERROR: 500,
}


class ATHError(Exception):
    """An ATH failure: a code, the HTTP status it is answered with, and a message.

    ``details`` carries machine-readable specifics (for example ``{"reason": "expired"}`` for an
    attestation, or the offending field for a schema error). ``status`` defaults to the code's
    own status and may be overridden where the spec says so. ``headers`` are response headers
    that belong to the error (``WWW-Authenticate`` of RFC 6750, ``Retry-After``): every renderer
    sends them, so an agent sees the same answer from every athkit endpoint.
    """

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.status = status if status is not None else self.code.http_status
        self.headers: dict[str, str] = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of ATH §7: ``{"code", "message", "details"}``."""
        body: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:
        return f"ATHError({self.code.value!r}, {self.message!r}, status={self.status})"
