""" "Example Mail": a small mail API that knows nothing of ATH, for the gateway story.

It trusts only its own OAuth server: every request carries a provider access token, which the
API checks through RFC 7662 introspection (it is a confidential client allowed to introspect)
before looking at the scopes:

    GET    /messages          mail:read
    GET    /messages/{id}     mail:read
    POST   /messages          mail:send    {"to", "subject", "body"}
    DELETE /messages/{id}     mail:delete

The mailboxes live in memory: this is a stand-in upstream for the demo, seeded at start.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from athkit.protocol import JSONLimits, JSONRejected, loads_bounded

MAIL_SCOPE_DESCRIPTIONS: dict[str, str] = {
    "mail:read": "Read your email",
    "mail:send": "Send email as you",
    "mail:delete": "Delete your email",
}
MAIL_ROUTES: dict[str, list[str]] = {
    "mail:read": ["GET /messages", "GET /messages/{id}"],
    "mail:send": ["POST /messages"],
    "mail:delete": ["DELETE /messages/{id}"],
}
_SEED = (
    ("bob@example.com", "Lunch on Friday?", "The usual place at noon?"),
    ("billing@example.com", "Your invoice", "Invoice 2026-11 is attached."),
    ("carol@example.com", "Photos", "Here are the photos from the trip."),
)
_MAX_BODY = 16 * 1024


def _error(status: int, error: str, message: str) -> JSONResponse:
    # The API's own error shape, deliberately not ATH's: the gateway passes it on unchanged.
    return JSONResponse({"error": error, "message": message}, status_code=status)


@dataclass
class _Mailboxes:
    by_user: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def of(self, user: str) -> list[dict[str, Any]]:
        if user not in self.by_user:
            self.by_user[user] = [
                {"id": str(next(self.ids)), "from": f, "subject": s, "body": b, "folder": "inbox"}
                for f, s, b in _SEED
            ]
        return self.by_user[user]


def create_mail_app(*, issuer: str, client_id: str, client_secret: str) -> Starlette:
    """The Example Mail API, checking tokens with ``{issuer}/introspect``."""
    boxes = _Mailboxes()
    http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=3.0))

    async def caller(request: Request, scope: str) -> str | Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "unauthorized", "send a bearer token")
        try:
            answer = await http.post(
                f"{issuer}/introspect",
                data={"token": token.strip()},
                auth=(client_id, client_secret),
            )
            info = answer.json() if answer.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return _error(503, "unavailable", "cannot check the token right now")
        if not isinstance(info, dict) or info.get("active") is not True:
            return _error(401, "invalid_token", "the token is not active")
        if scope not in str(info.get("scope", "")).split():
            return _error(403, "insufficient_scope", f"this needs {scope}")
        return str(info.get("sub") or "")

    async def list_messages(request: Request) -> Response:
        user = await caller(request, "mail:read")
        if isinstance(user, Response):
            return user
        return JSONResponse({"messages": boxes.of(user)})

    async def get_message(request: Request) -> Response:
        user = await caller(request, "mail:read")
        if isinstance(user, Response):
            return user
        for message in boxes.of(user):
            if message["id"] == request.path_params["id"]:
                return JSONResponse(message)
        return _error(404, "not_found", "no such message")

    async def send_message(request: Request) -> Response:
        user = await caller(request, "mail:send")
        if isinstance(user, Response):
            return user
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > _MAX_BODY:
                return _error(413, "too_large", f"send at most {_MAX_BODY} bytes")
        try:
            data = loads_bounded(bytes(raw), JSONLimits(max_bytes=_MAX_BODY))
        except JSONRejected as exc:
            return _error(400, "bad_request", f"send JSON with to, subject and body ({exc})")
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) for k in ("to", "subject", "body")
        ):
            return _error(400, "bad_request", "send JSON with to, subject and body")
        message = {
            "id": str(next(boxes.ids)),
            "to": data["to"][:320],
            "subject": data["subject"][:200],
            "body": data["body"][:4000],
            "folder": "sent",
        }
        boxes.of(user).append(message)
        return JSONResponse(message, status_code=201)

    async def delete_message(request: Request) -> Response:
        user = await caller(request, "mail:delete")
        if isinstance(user, Response):
            return user
        box = boxes.of(user)
        for message in box:
            if message["id"] == request.path_params["id"]:
                box.remove(message)
                return Response(status_code=204)
        return _error(404, "not_found", "no such message")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()

    async def http_error(_request: Request, exc: Exception) -> Response:
        # Unknown paths and wrong methods answer the API's own JSON, not Starlette's text.
        status = exc.status_code if isinstance(exc, HTTPException) else 400
        detail = exc.detail if isinstance(exc, HTTPException) else "bad request"
        return _error(status, "not_found" if status == 404 else "bad_request", detail)

    return Starlette(
        exception_handlers={HTTPException: http_error},
        routes=[
            Route("/messages", list_messages, methods=["GET"]),
            Route("/messages", send_message, methods=["POST"]),
            Route("/messages/{id}", get_message, methods=["GET"]),
            Route("/messages/{id}", delete_message, methods=["DELETE"]),
        ],
        lifespan=lifespan,
    )
