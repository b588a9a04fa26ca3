"""Forward-auth: the ATH §4.6 decision for a proxy (nginx, Envoy) that forwards by itself.

The proxy asks ``/ath/check`` about each call before forwarding it: an authorization
subrequest (nginx ``auth_request``) or an external authorization request (Envoy ``ext_authz``
HTTP service). This module reads that request and writes the answer; the decision itself is
the one :class:`~athkit.server.AccessCheck`. The gateway's ``/ath/check`` (provider credentials
for the forwarded call) builds on it, and so does :class:`NativeCheckApp`, the endpoint a native
service mounts when its API sits behind a proxy.

The original call is read from:

* its URI: ``X-Original-URI`` (nginx), else the path after ``/ath/check`` plus the query (Envoy,
  with ``path_prefix = "/ath/check"``);
* its method: ``X-Original-Method`` (nginx's subrequests are always GET), else this request's
  own (Envoy keeps it);
* its ``Authorization: Bearer`` and ``X-ATH-Agent-ID`` headers, passed through.

Only a caller sending ``X-ATH-Check-Secret`` with the configured shared secret is answered
(compared in constant time); anyone else gets 401 ``INVALID_CLIENT``, audited. A refusal answers
the ATH status and ``{"code","message","details"}`` body with the error's own headers
(``WWW-Authenticate``, ``Retry-After``) and the same JSON, as one ASCII line, in ``X-ATH-Error``
for proxies that drop a subrequest's body (nginx).
"""

from __future__ import annotations

import hmac
import json
import string
from dataclasses import dataclass
from urllib.parse import quote

from starlette.types import Receive, Scope, Send

from athkit.protocol import (
    AGENT_ID_HEADER,
    CHECK_PATH,
    CHECK_SECRET_HEADER,
    CLIENT_ID_HEADER,
    ERROR_HEADER,
    SCOPES_HEADER,
    USER_ID_HEADER,
    ATHError,
    ErrorCode,
    ScopeRouteMap,
)
from athkit.server._access import AccessCheck, bearer_token
from athkit.server._web import error_parts

SECRET_HEADER = CHECK_SECRET_HEADER
_SECRET = SECRET_HEADER.lower().encode()
_AGENT_ID = AGENT_ID_HEADER.lower().encode()
# Who the check allowed, as told to the service behind the proxy.
_CALLER_HEADERS = tuple(
    h.lower().encode() for h in (AGENT_ID_HEADER, CLIENT_ID_HEADER, USER_ID_HEADER, SCOPES_HEADER)
)
_ERROR = ERROR_HEADER.lower().encode()
_MAX_ERROR_HEADER = 2500  # well inside nginx's proxy_buffer_size (8k) for the check's answer
_HEADER_SAFE = string.punctuation.replace("%", "") + " "


def header_value(value: str) -> bytes:
    """``value`` for an HTTP header: printable ASCII kept, everything else percent-encoded."""
    return quote(value, safe=_HEADER_SAFE).encode("ascii")


@dataclass(frozen=True, slots=True)
class OriginalCall:
    """The call the proxy asks about."""

    method: str
    raw_path: bytes  # as the client sent it, without the query
    token: str | None
    agent_id: str | None


def read_original_call(scope: Scope, secret: bytes | None) -> OriginalCall:
    """The call behind a check request, once the shared secret is right (else ATHError)."""
    sent_secret = original_uri = original_method = token = agent = None
    for name, value in scope["headers"]:
        lower = name.lower()
        if lower == _SECRET:
            sent_secret = value
        elif lower == b"x-original-uri":
            original_uri = value
        elif lower == b"x-original-method":
            original_method = value
        elif lower == b"authorization":
            token = bearer_token(value.decode("latin-1")) or token
        elif lower == _AGENT_ID:
            agent = value.decode("latin-1").strip()
    if secret is None or sent_secret is None or not hmac.compare_digest(sent_secret, secret):
        raise ATHError(
            ErrorCode.INVALID_CLIENT,
            f"the check endpoint answers only the proxy configured with {SECRET_HEADER}",
            details={"reason": "check_secret"},
        )
    if original_uri is None:
        raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        original_uri = raw[len(CHECK_PATH) :]
    method = (original_method or scope["method"].encode()).decode("latin-1").upper()
    return OriginalCall(method, original_uri.split(b"?", 1)[0], token, agent)


def error_header(exc: ATHError) -> bytes:
    """The refusal as one ASCII line for ``X-ATH-Error`` (details dropped if too long)."""
    body = exc.to_dict()
    line = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
    if len(line) > _MAX_ERROR_HEADER:
        short = {"code": body["code"], "message": str(body["message"])[:500], "details": {}}
        line = json.dumps(short, separators=(",", ":"), ensure_ascii=True)
    return line.encode("ascii")


async def send_refusal(send: Send, exc: ATHError) -> None:
    """Answer a check request with the refusal the agent must get."""
    headers, body = error_parts(exc)
    headers.append((_ERROR, error_header(exc)))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_allowed(send: Send, headers: list[tuple[bytes, bytes]]) -> None:
    """Answer 200, empty body, with ``headers`` for the proxy to use."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"0"), (b"cache-control", b"no-store"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": b""})


class NativeCheckApp:
    """``/ath/check`` of a native service whose API a proxy forwards (raw ASGI).

    The original path is the service's own (``/api/notes/1``), checked against ``route_map``
    exactly as :class:`~athkit.server.ATHScopeMiddleware` checks it. Allowed calls answer 200
    with who is calling, for the proxy to pass to the API (which must trust only the proxy):
    ``X-ATH-Agent-ID``, ``X-ATH-Client-ID``, ``X-ATH-User-ID`` and ``X-ATH-Scopes`` (space
    separated), percent-encoded outside printable ASCII.
    """

    def __init__(
        self,
        access: AccessCheck,
        secret: str,
        route_map: ScopeRouteMap,
        *,
        provider_id: str | None = None,
    ) -> None:
        self.access = access
        self.route_map = route_map
        self.provider_id = provider_id
        self._secret = secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            call = read_original_call(scope, self._secret)
        except ATHError as exc:
            await send_refusal(send, await self.access.engine.record_refusal(exc))
            return
        path = call.raw_path.decode("latin-1")
        try:
            granted = await self.access.check(
                method=call.method,
                path=path,
                token=call.token,
                agent_id=call.agent_id,
                provider_id=self.provider_id,
                route_map=self.route_map,
            )
        except ATHError as exc:
            await send_refusal(send, exc)
            return
        info = granted.token
        caller = (info.agent_id, info.client_id, info.user_id, " ".join(info.scopes))
        headers = [(n, header_value(v)) for n, v in zip(_CALLER_HEADERS, caller, strict=True)]
        await send_allowed(send, headers)
