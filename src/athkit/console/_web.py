"""What every console page shares: templates, security headers, cookies, CSRF, notices."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from athkit.console._store import ConsoleSession, ConsoleStore
from athkit.pages import PAGE_HEADERS, page_templates
from athkit.protocol import ATHError
from athkit.server import ATHEngine, to_iso

_log = logging.getLogger("athkit.console")

# The project's page headers (no script, never framed, never cached), and forms that post only
# to ourselves (every console form posts to, and redirects within, its own origin).
SECURITY_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + "; form-action 'self'",
}

NOTICES = {
    "approved": ("Approved.", "ok"),
    "denied": ("Denied. The agent sees the reason in its status.", "ok"),
    "suspended": ("Suspended. Its tokens were revoked; its next call fails.", "ok"),
    "reinstated": ("Reinstated.", "ok"),
    "scopes": ("Scopes set.", "ok"),
    "revoked": ("Revoked.", "ok"),
    "signedout": ("Signed out.", "ok"),
    "unrevoked": ("That token was already revoked or has expired.", "bad"),
}


def templates() -> Environment:
    """The console's Jinja2 environment: its templates over the project's shared look
    (``athkit.pages``, which also gives ``when``), escaping always on."""
    env = page_templates(PackageLoader("athkit.console", "templates"))
    env.globals["iso"] = to_iso
    return env


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """One of the console's cookies: HttpOnly always, Secure on https, scoped to its path."""

    name: str
    path: str
    secure: bool
    samesite: str = "strict"

    def set(self, response: Response, value: str, max_age: int) -> None:
        """Attach the cookie to ``response``."""
        response.set_cookie(
            self.name,
            value,
            max_age=max_age,
            path=self.path,
            httponly=True,
            secure=self.secure,
            samesite=self.samesite,  # type: ignore[arg-type]
        )

    def clear(self, response: Response) -> None:
        """Remove the cookie."""
        response.delete_cookie(
            self.name,
            path=self.path,
            httponly=True,
            secure=self.secure,
            samesite=self.samesite,  # type: ignore[arg-type]
        )

    def read(self, request: Request) -> str | None:
        """The cookie's value in ``request``."""
        return request.cookies.get(self.name)


FORM_LIMIT = 32 * 1024  # bytes: the console's forms are a few fields long


class FormRefused(Exception):
    """A form body the console does not read: too large, not URL-encoded, not UTF-8."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


async def read_form(request: Request, limit: int = FORM_LIMIT) -> FormData:
    """The URL-encoded form of a POST, read with a size cap (413) and strict UTF-8 (400)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("application/x-www-form-urlencoded", ""):
        raise FormRefused("the console only reads URL-encoded forms", 415)
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise FormRefused(f"form larger than {limit} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormRefused(f"form larger than {limit} bytes", 413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormRefused("the form is not UTF-8", 400) from None
    if "\x00" in text:
        raise FormRefused("the form holds a NUL character", 400)
    try:
        fields = parse_qsl(text, keep_blank_values=True, max_num_fields=200)
    except ValueError:
        raise FormRefused("the form has too many fields", 400) from None
    return FormData([(name, value) for name, value in fields])


def csrf_ok(form: FormData, expected: str) -> bool:
    """Whether the form carries ``expected`` as its ``csrf`` field (constant-time)."""
    presented = form.get("csrf")
    return isinstance(presented, str) and hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8")
    )


def form_text(form: FormData, name: str, limit: int = 512) -> str:
    """A text field of a form, stripped and cut to ``limit`` characters ('' if absent)."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def local_path(value: str | None, root: str) -> str:
    """``value`` if it is a path under ``root`` of this site, else ``root``/ (no open redirect)."""
    if (
        value
        and value.startswith(root + "/")
        and not value.startswith(("//", "/\\"))
        and "\\" not in value
        and len(value) <= 512
    ):
        return value
    return root + "/"


def render(
    env: Environment,
    request: Request,
    template: str,
    context: Mapping[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    """A page with the notice named by ``?n=`` and the security headers."""
    notice = NOTICES.get(request.query_params.get("n", ""))
    values: dict[str, Any] = {"notice": None, "notice_kind": "ok", "narrow": False}
    if notice is not None:
        values["notice"], values["notice_kind"] = notice
    values.update(context)
    values.setdefault("site", values.get("site_name"))
    html = env.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


@dataclass
class ConsoleSite:
    """What the operator pages and the user pages of one deployment share: the engine, the
    accounts store, the templates, and where and under which name they are served."""

    kind: ClassVar[str]
    home: ClassVar[str]
    failure_title: ClassVar[str]

    def __init_subclass__(cls, *, kind: str, home: str, failure_title: str, **rest: Any) -> None:
        """``kind``: whose sessions the pages read ("operator" or "user"); ``home``: where a
        message page's "back" link leads, under ``root``; ``failure_title``: the title of the
        page shown when a backing service fails."""
        super().__init_subclass__(**rest)
        cls.kind, cls.home, cls.failure_title = kind, home, failure_title

    engine: ATHEngine
    store: ConsoleStore
    env: Environment
    deployment: str
    root: str
    cookie: CookieSpec
    site_name: str

    def _show(
        self, request: Request, template: str, status_code: int, context: Mapping[str, Any]
    ) -> Response:
        """``template`` with the site's name and root besides ``context``."""
        values = {"site_name": self.site_name, "root": self.root, **context}
        return render(self.env, request, template, values, status_code)

    async def _session(self, request: Request) -> ConsoleSession | None:
        return await self.store.load_session(self.deployment, self.kind, self.cookie.read(request))

    def _frame(self, session: ConsoleSession | None) -> dict[str, Any]:
        """What every page of this site shows around its content (header, CSRF token)."""
        raise NotImplementedError

    def _message(
        self,
        request: Request,
        session: ConsoleSession | None,
        title: str,
        text: str,
        status_code: int,
    ) -> Response:
        """A page that says ``title`` and ``text``, with a link back home."""
        context = {"title": title, "text": text, "back": self.root + self.home}
        return self._show(request, "message.html", status_code, self._frame(session) | context)

    def _failure(self, request: Request, session: ConsoleSession | None) -> Response:
        # A store or service fault: nothing was changed that the page claims; say so plainly.
        _log.exception("console: %s %s failed", request.method, request.url.path)
        return self._message(
            request,
            session,
            self.failure_title,
            "A backing service failed; nothing was changed. Try again in a moment.",
            503,
        )

    def _refused(
        self, request: Request, session: ConsoleSession | None, exc: Exception
    ) -> Response:
        """The page for what a handler raised: the refusal in words, or (anything but an ATH
        refusal or a refused form) a backing-service failure. Call it in the ``except``."""
        if isinstance(exc, ATHError):
            return self._message(request, session, "Not done", exc.message, exc.status)
        if isinstance(exc, FormRefused):
            return self._message(request, session, "Form refused", exc.message, exc.status)
        return self._failure(request, session)
