"""Shared pieces of the HTTP adapter: bounded body reading, schema errors that name the field,
ATH §7 error rendering, and audited rejections."""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from athkit.protocol import ATHError, ErrorCode
from athkit.server._engine import ATHEngine

_M = TypeVar("_M", bound=BaseModel)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def invalid_request(message: str, **details: Any) -> ATHError:
    """A 400 ``INVALID_REQUEST``."""
    return ATHError(ErrorCode.INVALID_REQUEST, message, details=details)


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


async def parse_model(
    request: Request,
    model: type[_M],
    limit: int,
    *,
    allow_form: bool = False,
    allow_empty: bool = False,
) -> _M:
    """Read and validate a JSON (or, where allowed, form-encoded) body as ``model``.

    Malformed JSON and schema failures answer 400 ``INVALID_REQUEST`` naming the field. With
    ``allow_empty``, an empty body (whatever its Content-Type) is read as ``{}``.
    """
    body = await read_body(request, limit)
    if allow_empty and not body.strip():
        return validate(model, {})
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: Any
    if allow_form and content_type == "application/x-www-form-urlencoded":
        try:
            data = dict(parse_qsl(body.decode("utf-8"), strict_parsing=False))
        except UnicodeDecodeError:
            raise invalid_request("form body is not UTF-8", reason="malformed_body") from None
    else:
        if content_type not in ("application/json", "") and not content_type.endswith("+json"):
            raise ATHError(
                ErrorCode.INVALID_REQUEST,
                f"Content-Type must be application/json, not {content_type}",
                details={"reason": "unsupported_media_type"},
                status=415,
            )
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid_request(
                f"body is not valid JSON: {exc}", reason="malformed_json"
            ) from None
    if not isinstance(data, dict):
        raise invalid_request("body must be a JSON object", reason="not_an_object")
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
