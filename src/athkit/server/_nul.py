"""``RefuseNul``: an ASGI middleware that refuses a request whose path or query string holds a
NUL character (``%00``), before any handler or store sees it.

No honest URL carries one, and PostgreSQL cannot store or compare text that does: a path
parameter or query value with NUL would reach a lookup and fail there. The answer is the
documented 400 ``INVALID_REQUEST`` (an HTML page for a browser).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from athkit.pages import status_page, wants_html
from athkit.protocol import ATHError, ErrorCode
from athkit.server._web import error_response

_NUL_ENCODED = (b"%00", b"\x00")


def url_holds_nul(scope: Scope) -> bool:
    """Whether the request's path or query string holds NUL, raw or percent-encoded."""
    path: Any = scope.get("path", "")
    raw_path: Any = scope.get("raw_path") or b""
    query: Any = scope.get("query_string") or b""
    return "\x00" in path or any(n in raw_path.lower() or n in query for n in _NUL_ENCODED)


class RefuseNul:
    """Answer 400 ``INVALID_REQUEST`` to an HTTP request with NUL in its URL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not url_holds_nul(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response: Response
        if wants_html(request.headers.get("accept")):
            response = status_page(400)
        else:
            response = error_response(
                ATHError(
                    ErrorCode.INVALID_REQUEST,
                    "the URL holds a NUL character",
                    details={"reason": "nul_in_url"},
                )
            )
        await response(scope, receive, send)
