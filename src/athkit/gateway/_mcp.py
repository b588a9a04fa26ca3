"""An MCP server as a gateway provider (streamable-HTTP transport), checked per tool.

A provider with an ``[mcp]`` section is an MCP upstream: its endpoint (``path``, ``/mcp`` by
default) is reached at ``/ath/proxy/{provider_id}{path}``, and its scope map names *tools*
(``prompt:NAME`` and ``resource:URI*`` too, :class:`~athkit.protocol.McpScopeMap`) instead of
routes. On each POST the gateway reads the JSON-RPC message (bounded) and:

- refuses ``tools/call`` (``prompts/get``, ``resources/read`` …) of a name outside the token's
  scopes with ``SCOPE_NOT_APPROVED`` — a JSON-RPC error carrying the ATH body, audited as
  ``scope_violation`` with the tool's name;
- answers ``tools/list`` (``prompts/list``, ``resources/list``) with only the entries the token
  allows — the one response the gateway reads whole, to rewrite it;
- passes everything else through, responses and their server-sent event streams unbuffered.

Every forwarded message is audited as ``proxy_request`` with its MCP method and tool. GET (the
server's event stream) and DELETE (end of session) need a valid token only. A JSON-RPC batch is
refused (MCP 2025-06-18 dropped batching; a batch could hide a call among allowed ones).
Refusals on an MCP endpoint — the token checks included — are JSON-RPC errors at the ATH status,
with ``WWW-Authenticate: Bearer error_description="<code>"``, so MCP clients show the ATH code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator
from starlette.types import Receive, Send

from athkit.protocol import (
    ATHError,
    ErrorCode,
    McpScopeMap,
    McpTarget,
    jsonrpc_ath_error,
    target_of,
)
from athkit.protocol._mcp import LISTING_METHODS
from athkit.server._settings import StrictModel
from athkit.server._web import mcp_scope_violation

MAX_MESSAGE_BYTES = 1 << 20
MAX_LISTING_BYTES = 8 << 20


class McpUpstreamConfig(StrictModel):
    """The ``[providers.<id>.mcp]`` section: where the MCP endpoint is, which scope allows
    what."""

    path: str = "/mcp"
    tools: dict[str, list[str]] = Field(
        description="scope → tool names (and 'prompt:NAME', 'resource:URI*') it allows"
    )
    max_message_bytes: int = Field(default=MAX_MESSAGE_BYTES, gt=0, le=16 << 20)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or "?" in value or "#" in value:
            raise ValueError("path must be an absolute path such as /mcp")
        return value.rstrip("/") or "/"

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        McpScopeMap.from_config(value)  # every entry parses
        return value


@dataclass(slots=True)
class McpCall:
    """What the gateway learned from one MCP POST."""

    body: bytes
    request_id: Any = None
    method: str | None = None
    target: McpTarget | None = None
    scope: str | None = None

    @property
    def is_listing(self) -> bool:
        """A listing whose answer the gateway filters."""
        return self.method in LISTING_METHODS and self.request_id is not None

    def audit_details(self) -> dict[str, Any]:
        """The MCP part of the audit event."""
        details: dict[str, Any] = {}
        if self.method is not None:
            details["mcp_method"] = self.method
        if self.target is not None:
            details[self.target.kind] = self.target.name
        return details


@dataclass(slots=True)
class McpGate:
    """The per-tool check of one MCP upstream."""

    path: str
    scopes: McpScopeMap
    max_message_bytes: int = MAX_MESSAGE_BYTES

    @classmethod
    def from_config(cls, config: McpUpstreamConfig) -> McpGate:
        """Parse the config once, at start-up."""
        return cls(config.path, McpScopeMap.from_config(config.tools), config.max_message_bytes)

    def covers(self, path: str) -> bool:
        """Whether a proxied path is this MCP endpoint."""
        return path.rstrip("/") == self.path or (self.path == "/" and path == "/")

    async def read(self, receive: Receive) -> McpCall:
        """Read and classify a POSTed JSON-RPC message (refused when malformed or too big)."""
        body = await read_bounded(receive, self.max_message_bytes)
        call = McpCall(body)
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _invalid("the body is not a JSON-RPC message") from None
        if isinstance(message, list):
            raise _invalid("JSON-RPC batches are not accepted through the gateway")
        if not isinstance(message, dict):
            raise _invalid("the body is not a JSON-RPC message")
        if isinstance(message.get("id"), str | int) and not isinstance(message.get("id"), bool):
            call.request_id = message["id"]
        method = message.get("method")
        if method is None:
            return call  # the client's answer to a server request: nothing to allow
        if not isinstance(method, str):
            raise _invalid("method must be a string")
        call.method = method
        try:
            call.target = target_of(method, message.get("params"))
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        return call

    def check(self, call: McpCall, granted: tuple[str, ...]) -> ATHError | None:
        """``None`` when the token allows the call (``call.scope`` set), else the refusal."""
        if call.target is None:
            return None
        allowing = self.scopes.scopes_allowing(call.target)
        used = next((s for s in allowing if s in granted), None)
        if used is not None:
            call.scope = used
            return None
        return mcp_scope_violation(call.target, allowing, granted)

    def filter_body(
        self, call: McpCall, body: bytes, content_type: str, granted: tuple[str, ...]
    ) -> bytes:
        """The listing response with only what ``granted`` allows (JSON or an SSE stream)."""
        assert call.method is not None
        if content_type.startswith("text/event-stream"):
            return _filter_sse(body, lambda m: self._filter_message(call, m, granted))
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return body
        return _dumps(self._filter_message(call, message, granted))

    def _filter_message(self, call: McpCall, message: Any, granted: tuple[str, ...]) -> Any:
        if (
            isinstance(message, dict)
            and message.get("id") == call.request_id
            and isinstance(message.get("result"), dict)
        ):
            assert call.method is not None
            result = self.scopes.filter_listing(call.method, message["result"], granted)
            return {**message, "result": result}
        return message


def _dumps(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _filter_sse(body: bytes, rewrite: Callable[[Any], Any]) -> bytes:
    """Rewrite the JSON ``data`` of each server-sent event with ``rewrite``."""
    text = body.decode("utf-8")
    out: list[str] = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        if not event:
            continue
        lines = event.split("\n")
        data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
        if not data:
            out.append(event)
            continue
        try:
            message = json.loads("\n".join(data))
        except ValueError:
            out.append(event)
            continue
        others = [line for line in lines if not line.startswith("data:")]
        out.append("\n".join([*others, "data: " + _dumps(rewrite(message)).decode("utf-8")]))
    return ("\n\n".join(out) + "\n\n").encode("utf-8")


def _invalid(message: str) -> ATHError:
    return ATHError(ErrorCode.INVALID_REQUEST, message, details={"reason": "invalid_mcp_message"})


async def read_bounded(receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes."""
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ATHError(ErrorCode.INVALID_REQUEST, "the client went away mid-request")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise ATHError(
                ErrorCode.INVALID_REQUEST,
                f"MCP message larger than {limit} bytes",
                details={"reason": "body_too_large", "limit": limit},
                status=413,
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_jsonrpc_error(send: Send, exc: ATHError, request_id: Any) -> None:
    """An ATH refusal on an MCP endpoint: the ATH status, a JSON-RPC error body."""
    body = _dumps(jsonrpc_ath_error(exc, request_id))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    extra = {name.lower(): value for name, value in exc.headers.items()}
    if exc.status == 401 and "www-authenticate" not in extra:
        extra["www-authenticate"] = (
            f'Bearer realm="ath", error="invalid_token", error_description="{exc.code}"'
        )
    headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in extra.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
