"""Shared pieces of the HTTP adapter: bounded body reading, schema errors that name the field,
ATH §7 error rendering, and audited rejections."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from athkit.protocol import (
    ATHError,
    ErrorCode,
    JSONLimits,
    JSONRejected,
    McpTarget,
    loads_bounded,
)
from athkit.protocol._json import check_bounded
from athkit.server._engine import ATHEngine

_M = TypeVar("_M", bound=BaseModel)

_log = logging.getLogger("athkit.server")

Endpoint = Callable[[Request], Awaitable[Response]]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def fail_closed(endpoint: Endpoint) -> Endpoint:
    """Turn any unexpected exception into a JSON ``INTERNAL_ERROR`` (no stack trace out)."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ATHError as exc:
            return error_response(exc)
        except Exception:
            _log.exception("unhandled error in %s", request.url.path)
            return error_response(
                ATHError(ErrorCode.INTERNAL_ERROR, "the server could not complete the request")
            )

    return wrapper


def invalid_request(message: str, **details: Any) -> ATHError:
    """A 400 ``INVALID_REQUEST``."""
    return ATHError(ErrorCode.INVALID_REQUEST, message, details=details)


def mcp_scope_violation(target: McpTarget, allowing: list[str], granted: Iterable[str]) -> ATHError:
    """The ``SCOPE_NOT_APPROVED`` refusal of an MCP call whose tool, prompt or resource
    ``target`` no scope in ``granted`` allows (``allowing``: the scopes that would)."""
    return ATHError(
        ErrorCode.SCOPE_NOT_APPROVED,
        f"the token does not allow the {target.kind} {target.name!r}"
        + (f" (it needs {' or '.join(allowing)})" if allowing else " (no scope allows it)"),
        details={
            "reason": "scope_violation",
            target.kind: target.name,
            "required_scopes": allowing,
            "token_scopes": list(granted),
        },
    )


def error_parts(exc: ATHError) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """ATH §7 as raw ASGI response parts, for apps that answer without Starlette (the proxy,
    forward-auth): the JSON body and its headers, the error's own headers included."""
    body = json.dumps(exc.to_dict(), separators=(",", ":")).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()),
    ]
    return headers, body


def error_response(exc: ATHError) -> JSONResponse:
    """ATH §7: ``{"code","message","details"}`` with the code's status and the error's own
    headers (``WWW-Authenticate``, ``Retry-After``)."""
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers={**NO_STORE, **exc.headers})


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes with 413 ``INVALID_REQUEST``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise invalid_request("Content-Length is not a number") from None
        if size > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ATHError:
    return ATHError(
        ErrorCode.INVALID_REQUEST,
        f"request body larger than {limit} bytes",
        details={"reason": "body_too_large", "limit": limit},
        status=413,
    )


def _media_type(request: Request) -> tuple[str, str | None]:
    """The Content-Type's media type (lower case) and its ``charset`` parameter, if any."""
    media, _, params = request.headers.get("content-type", "").partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def _unsupported(message: str) -> ATHError:
    return ATHError(
        ErrorCode.INVALID_REQUEST,
        message,
        details={"reason": "unsupported_media_type"},
        status=415,
    )


def decode_json(body: bytes, limit: int) -> Any:
    """Parse a JSON request body within :class:`~athkit.protocol.JSONLimits` (``limit`` bytes):
    400 ``INVALID_REQUEST`` naming the bound that was hit, 413 when it is too large."""
    try:
        return loads_bounded(body, JSONLimits(max_bytes=limit))
    except JSONRejected as exc:
        if exc.reason == "too_large":
            raise _too_large(limit) from None
        reason = "malformed_json" if exc.reason == "malformed" else f"json_{exc.reason}"
        raise invalid_request(f"body refused: {exc.message}", reason=reason) from None


def decode_form(body: bytes, limit: int) -> dict[str, str]:
    """Parse an ``application/x-www-form-urlencoded`` body: UTF-8, each name once, values within
    the same bounds as JSON strings."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=256)
    except UnicodeDecodeError:
        raise invalid_request("form body is not UTF-8", reason="malformed_body") from None
    except ValueError:
        raise invalid_request("form body has too many fields", reason="malformed_body") from None
    data = dict(pairs)
    if len(data) != len(pairs):
        raise invalid_request("form body names a field twice", reason="duplicate_field")
    try:
        check_bounded(data, JSONLimits(max_bytes=limit))
    except JSONRejected as exc:
        raise invalid_request(f"body refused: {exc.message}", reason=f"form_{exc.reason}") from None
    return data


MAX_FORM_BYTES = 32 * 1024


async def read_form(request: Request, *, max_fields: int, limit: int = MAX_FORM_BYTES) -> FormData:
    """A browser form (``application/x-www-form-urlencoded``), bounded like a JSON body: at
    most ``limit`` bytes (413), that media type (415), UTF-8, at most ``max_fields`` fields and
    no NUL (400), each an :class:`ATHError` ``INVALID_REQUEST``. Starlette's own
    ``request.form()`` buffers a urlencoded body of any size and fails with its own exceptions
    on a malformed multipart body; pages and the console use this instead."""
    body = await read_body(request, limit)
    if not body:
        return FormData()  # an empty POST is an empty form, whatever it says it is
    media, charset = _media_type(request)
    if media != "application/x-www-form-urlencoded" or charset not in (None, "utf-8", "utf8"):
        raise _unsupported("send the form as application/x-www-form-urlencoded (UTF-8)")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields)
    except UnicodeDecodeError:
        raise invalid_request("form body is not UTF-8", reason="malformed_body") from None
    except ValueError:
        raise invalid_request("form body has too many fields", reason="malformed_body") from None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise invalid_request("form body holds a NUL character", reason="malformed_body")
    return FormData([(name, value) for name, value in pairs])


async def read_json_object(
    request: Request, limit: int, *, allow_form: bool = False, allow_empty: bool = False
) -> Any:
    """The request body as a JSON object (or, where allowed, a form), bounded in every way:
    size (413), media type and charset (415), then :func:`decode_json` (400). With
    ``allow_empty``, an empty body (whatever its Content-Type) is ``{}``."""
    body = await read_body(request, limit)
    if allow_empty and not body.strip():
        return {}
    media, charset = _media_type(request)
    if charset not in (None, "utf-8", "utf8"):
        raise _unsupported(f"the body must be UTF-8, not {charset}")
    form = allow_form and media == "application/x-www-form-urlencoded"
    if not form and media not in ("application/json", "") and not media.endswith("+json"):
        accepted = "application/json" + (
            " or application/x-www-form-urlencoded" if allow_form else ""
        )
        raise _unsupported(f"Content-Type must be {accepted}, not {media}")
    data = decode_form(body, limit) if form else decode_json(body, limit)
    if not isinstance(data, dict):
        raise invalid_request("body must be a JSON object", reason="not_an_object")
    return data


async def parse_model(
    request: Request,
    model: type[_M],
    limit: int,
    *,
    allow_form: bool = False,
    allow_empty: bool = False,
) -> _M:
    """Read and validate a JSON (or, where allowed, form-encoded) body as ``model``.

    Every bound of :func:`read_json_object` applies; schema failures answer 400
    ``INVALID_REQUEST`` naming the field. With ``allow_empty``, an empty body (whatever its
    Content-Type) is read as ``{}``.
    """
    data = await read_json_object(request, limit, allow_form=allow_form, allow_empty=allow_empty)
    return validate(model, data)


def validate(model: type[_M], data: dict[str, Any]) -> _M:
    """``model.model_validate(data)``, with errors turned into ``INVALID_REQUEST``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        first = errors[0]
        field = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise invalid_request(
            f"{field}: {first['msg']}",
            reason="schema",
            field=field,
            errors=[
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in errors[:20]
            ],
        ) from None


async def reject(
    engine: ATHEngine,
    exc: ATHError,
    event: str = "access_denied",
    **who: Any,
) -> Response:
    """Audit a rejection decided by the adapter itself (bad body, missing credentials), then
    render it. If the audit store is down, answer ``INTERNAL_ERROR`` (fail closed)."""
    try:
        await engine.audit(
            event,
            reason=str(exc.details.get("reason") or exc.message)[:512],
            code=exc.code.value,
            details={k: v for k, v in exc.details.items() if k in ("field", "reason")},
            **who,
        )
    except Exception:
        return error_response(
            ATHError(ErrorCode.INTERNAL_ERROR, "the audit store is unavailable; request refused")
        )
    return error_response(exc)


def cookie_tag(base_url: str) -> str:
    """A short tag unique to one ATH app, so apps sharing a host keep separate cookies."""
    return hashlib.sha256(base_url.encode("utf-8")).hexdigest()[:10]


def binding_cookie_name(tag: str, session_id: str) -> str:
    """The cookie that binds a browser to one ATH session (ATH §4.3)."""
    return f"athb_{tag}_{hashlib.sha256(session_id.encode('utf-8')).hexdigest()[:16]}"
