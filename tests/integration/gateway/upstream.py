"""A small upstream API for gateway tests: knows nothing of ATH, checks its own bearer token."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

TokenCheck = Callable[[str], Awaitable[str | None]]


def create_upstream_app(check_token: TokenCheck, *, name: str = "upstream") -> Starlette:
    """Routes: /messages (GET, POST), /messages/{id} (GET, DELETE), /slow, /big, /drip,
    /echo-auth, /always-401.

    ``check_token(token)`` returns the user id behind a valid provider token, or ``None``.
    Every answer echoes the request headers it saw (never the Authorization value).
    """
    seen: list[dict[str, str]] = []

    async def authenticated(request: Request) -> str | Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        user = await check_token(token) if scheme.lower() == "bearer" and token else None
        if user is None:
            return JSONResponse(
                {"error": "invalid_token"}, status_code=401, headers={"www-authenticate": "Bearer"}
            )
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        seen.append(headers)
        return user

    async def messages(request: Request) -> Response:
        user = await authenticated(request)
        if isinstance(user, Response):
            return user
        if request.method == "POST":
            digest = hashlib.sha256()
            size = 0
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
            return JSONResponse(
                {"created": True, "size": size, "sha256": digest.hexdigest()}, status_code=201
            )
        return JSONResponse(
            {
                "service": name,
                "user": user,
                "messages": [{"id": "1", "subject": "hello"}],
                "query": request.url.query,
                "headers": seen[-1],
            },
            headers={
                "x-upstream": name,
                "connection": "x-private-hop",
                "x-private-hop": "must not pass",
                "keep-alive": "timeout=5",
            },
        )

    async def message(request: Request) -> Response:
        user = await authenticated(request)
        if isinstance(user, Response):
            return user
        if request.method == "DELETE":
            return Response(status_code=204)
        return JSONResponse({"id": request.path_params["id"], "user": user, "service": name})

    async def slow(request: Request) -> Response:
        user = await authenticated(request)
        if isinstance(user, Response):
            return user
        await asyncio.sleep(3)
        return JSONResponse({"slow": True})

    async def big(request: Request) -> Response:
        user = await authenticated(request)
        if isinstance(user, Response):
            return user

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(64):
                yield bytes([i % 256]) * 16384

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    async def drip(request: Request) -> Response:
        # Three chunks 0.4 s apart: a proxy that streams passes the first one on at once.
        user = await authenticated(request)
        if isinstance(user, Response):
            return user

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"chunk {i}\n".encode()
                await asyncio.sleep(0.4)

        return StreamingResponse(chunks(), media_type="text/plain")

    async def always_401(request: Request) -> Response:
        # An upstream that refuses every token, even freshly refreshed ones.
        return JSONResponse({"error": "invalid_token"}, status_code=401)

    async def echo_auth(request: Request) -> Response:
        # A badly written upstream that echoes the credential it was sent.
        return JSONResponse({"you_sent": request.headers.get("authorization", "")})

    return Starlette(
        routes=[
            Route("/messages", messages, methods=["GET", "POST"]),
            Route("/messages/{id}", message, methods=["GET", "DELETE"]),
            Route("/slow", slow, methods=["GET"]),
            Route("/big", big, methods=["GET"]),
            Route("/drip", drip, methods=["GET"]),
            Route("/echo-auth", echo_auth, methods=["GET"]),
            Route("/always-401", always_401, methods=["GET"]),
        ]
    )
