"""Every failure an agent sees, in two types.

::

    ATHClientError          a step of the handshake (or an API call) did not succeed
      code                  - the ATH code the server answered (ATH §7), for example
                              ``SCOPE_NOT_APPROVED`` or ``AGENT_ALREADY_REGISTERED``, or one of
                              the client-side codes below
      status                - the HTTP status, or ``None`` when no response arrived
      message, details      - what the server (or the client) said
    CredentialStoreError    the credential or configuration file is unreadable, tampered with,
                            or too widely readable

Client-side codes (never sent by a server):

    NETWORK_ERROR       the server could not be reached, or did not answer in time
    TOKEN_EXPIRED       a stored token is past its ``expires_in`` and was not sent; the user
                        must authorize again (the server uses the same code for the same reason)
    NOT_AUTHORIZED      no token is stored for this server and provider
    NOT_REGISTERED      no client credentials are stored for this server and agent
    STATE_MISMATCH      the redirect carried another ``state`` than the one sent (ATH §4.3)
    USER_DENIED         the redirect carried ``error=access_denied``
    AUTHORIZATION_TIMEOUT  nobody came back to the loopback listener in time
    BAD_RESPONSE        the server answered something that is not the protocol's message
    HTTP_ERROR          the server answered an error status without an ATH error body
    WRONG_MODE          a gateway-only call on a native service, or the other way round
    PROVIDER_REQUIRED   a gateway call that needs a provider_id, with several to choose from
"""

from __future__ import annotations

from typing import Any

NETWORK_ERROR = "NETWORK_ERROR"
TOKEN_EXPIRED = "TOKEN_EXPIRED"
TOKEN_REVOKED = "TOKEN_REVOKED"  # the server's code, remembered on the stored token
NOT_AUTHORIZED = "NOT_AUTHORIZED"
NOT_REGISTERED = "NOT_REGISTERED"
STATE_MISMATCH = "STATE_MISMATCH"
USER_DENIED = "USER_DENIED"
AUTHORIZATION_TIMEOUT = "AUTHORIZATION_TIMEOUT"
BAD_RESPONSE = "BAD_RESPONSE"
HTTP_ERROR = "HTTP_ERROR"
WRONG_MODE = "WRONG_MODE"
PROVIDER_REQUIRED = "PROVIDER_REQUIRED"


class ATHClientError(Exception):
    """A handshake step or API call that did not succeed.

    ``code`` is the ATH error code from the server's ``{"code", "message", "details"}`` body, or
    a client-side code such as ``NETWORK_ERROR``; ``status`` the HTTP status (``None`` when no
    response arrived).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    @property
    def is_network_error(self) -> bool:
        """True when no answer came from the server at all."""
        return self.code == NETWORK_ERROR

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON-ready data (the CLI prints this with ``--json``)."""
        body: dict[str, Any] = {"code": self.code, "status": self.status, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ATHClientError({self.code!r}, {self.message!r}, status={self.status})"


class CredentialStoreError(Exception):
    """A credential or configuration file that cannot be trusted or read."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
