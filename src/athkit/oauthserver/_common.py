"""What every endpoint of the OAuth server shares: its state, errors, audit and responses.

Errors (RFC 6749):

    at /authorize, before the client and redirect_uri are known good
        → an HTML error page, status 400; never a redirect (§4.1.2.1)
    at /authorize after that, and on the consent form
        → a redirect to the client: error, error_description, state, iss (§4.1.2.1, RFC 9207)
            invalid_request, unsupported_response_type, invalid_scope, invalid_target (RFC 8707),
            access_denied
    at /token, /revoke, /introspect
        → JSON {"error", "error_description"}, Cache-Control: no-store (§5.2)
            invalid_request 400, invalid_client 401 (+ WWW-Authenticate after Basic auth),
            invalid_grant 400, unsupported_grant_type 400, invalid_scope 400,
            unauthorized_client 403 (introspection not allowed for this client)
    at /userinfo → 401 with WWW-Authenticate: Bearer error="invalid_token" (RFC 6750 §3)
    a failing database → 503 (JSON ``temporarily_unavailable``, or the HTML error page)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jinja2 import Environment, PackageLoader
from starlette.datastructures import FormData, ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from athkit.oauthserver._config import OAuthServerConfig
from athkit.oauthserver._sessions import BrowserSession, decode_session, encode_session
from athkit.oauthserver._store import OAuthStore
from athkit.pages import page_templates, render_page

audit_log = logging.getLogger("athkit.oauthserver.audit")

_JSON_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An RFC 6749 error: its code, a description for the developer, and the HTTP status."""

    def __init__(
        self, error: str, description: str, *, status: int = 400, basic_auth: bool = False
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.basic_auth = basic_auth

    def response(self) -> JSONResponse:
        """The §5.2 JSON body."""
        headers = dict(_JSON_HEADERS)
        if self.status == 401 and self.basic_auth:
            headers["WWW-Authenticate"] = 'Basic realm="athkit-oauth", charset="UTF-8"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


@dataclass
class ServerState:
    """The configuration and dependencies every handler works with."""

    config: OAuthServerConfig
    store: OAuthStore
    clock: Callable[[], float] = time.time
    templates: Environment = field(
        default_factory=lambda: page_templates(PackageLoader("athkit.oauthserver", "templates"))
    )

    def now(self) -> float:
        """The current time (injectable for tests)."""
        return self.clock()

    def url(self, path: str) -> str:
        """An absolute URL on this server."""
        return f"{self.config.issuer}{path}"

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render an HTML page with the security headers every page carries."""
        return render_page(self.templates, template, status=status, **context)

    def error_page(self, title: str, message: str, status: int = 400) -> HTMLResponse:
        """The page for errors that must not go back to the client."""
        return self.render("error.html", status=status, title=title, message=message)

    def session(self, request: Request) -> BrowserSession | None:
        """The browser's valid session, if it has one."""
        return decode_session(
            request.cookies.get(self.config.cookie_name),
            self.config.signing_key,
            now=self.now(),
            lifetime=self.config.session_lifetime,
        )

    def set_session(self, response: Response, session: BrowserSession) -> None:
        """Attach the signed session cookie (HttpOnly, SameSite=Lax, Secure on https)."""
        response.set_cookie(
            self.config.cookie_name,
            encode_session(session, self.config.signing_key),
            max_age=self.config.session_lifetime,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.config.secure_cookies,
        )


def audit(event: str, **fields: Any) -> None:
    """Record a decision (never a secret) on the ``athkit.oauthserver.audit`` logger."""
    shown = " ".join(f"{k}={v!r}" for k, v in fields.items() if v is not None)
    audit_log.info("%s %s", event, shown)


MAX_FORM_BYTES = 32 * 1024


async def read_form(request: Request, *, max_fields: int) -> FormData:
    """An ``application/x-www-form-urlencoded`` body, read at most ``MAX_FORM_BYTES`` far
    (Starlette's own form parser buffers a urlencoded body of any size). Too large is a 413
    ``invalid_request``; more than ``max_fields`` fields, bytes that are not UTF-8 or a NUL in
    a value (which no honest form sends and PostgreSQL cannot store) are a 400."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "the form is too large", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "the form is too large", status=413)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "the form is not UTF-8") from None
    except ValueError:
        raise OAuthError("invalid_request", "the form has too many fields") from None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise OAuthError("invalid_request", "the form holds a NUL character")
    return FormData([(name, value) for name, value in pairs])


def duplicated(params: ImmutableMultiDict[str, Any] | FormData) -> list[str]:
    """Parameter names given more than once (RFC 6749 §3.1: MUST NOT)."""
    return sorted({k for k in params if len(params.getlist(k)) > 1})


def redirect_with(uri: str, params: dict[str, str | None], status: int = 303) -> RedirectResponse:
    """Redirect to ``uri`` with ``params`` added to its query (its own query is kept)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    target = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return RedirectResponse(target, status_code=status, headers={"Cache-Control": "no-store"})


def json_response(body: dict[str, Any], status: int = 200) -> JSONResponse:
    """A JSON answer that no cache keeps."""
    return JSONResponse(body, status_code=status, headers=_JSON_HEADERS)
