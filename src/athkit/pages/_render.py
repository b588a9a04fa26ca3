"""The project's page look (the consent page's), shared by every page a person opens.

Templates live in ``athkit/pages/templates/athkit/``. A package with pages of its own builds its
Jinja environment with :func:`page_templates` and its own loader, then writes
``{% extends "athkit/base.html" %}`` (blocks ``title``, ``style``, ``main_class``, ``content``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypedDict, Unpack

from jinja2 import BaseLoader, ChoiceLoader, Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

from athkit.pages._messages import Explanation, explain, explain_status
from athkit.protocol import ATHError

PAGE_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # No form-action: Chromium applies it to the redirect that follows a consent POST.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
}
"""Security headers every page carries: never cached, never framed, no scripts, no referrer."""

Link = tuple[str, str]
"""A ``(label, href)`` button under a message."""


def when(ts: float | None) -> str:
    """POSIX seconds as ``2026-11-29 16:34 UTC`` for tables (``—`` for none)."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def page_loader() -> BaseLoader:
    """The loader for the shared templates (``athkit/base.html``, ``athkit/message.html``,
    the macros in ``athkit/forms.html`` and ``athkit/agents.html``)."""
    return PackageLoader("athkit.pages", "templates")


def page_templates(*loaders: BaseLoader) -> Environment:
    """A Jinja environment (autoescaping on) that finds ``loaders``' templates first, then the
    shared ones, with the globals the shared ones use (``when``)."""
    env = Environment(
        loader=ChoiceLoader([*loaders, page_loader()]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,
    )
    env.globals["when"] = when
    return env


@lru_cache(maxsize=1)
def _shared() -> Environment:
    return page_templates()


def render_page(
    env: Environment | None,
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` from ``env`` (the shared environment when ``None``) with the security
    headers of :data:`PAGE_HEADERS` (plus ``headers``)."""
    body = (env or _shared()).get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


class MessageFields(TypedDict, total=False):
    """What a message page shows besides its title and message (see :func:`message_page`)."""

    advice: str | None
    tone: str
    code: str | None
    links: Sequence[Link]
    body_html: str | None
    site: str | None


def message_html(
    title: str, message: str, *, status: int = 200, **fields: Unpack[MessageFields]
) -> str:
    """The HTML text of a message page (see :func:`message_page`), for servers that are not
    Starlette apps (the agent's loopback listener)."""
    tone = fields.get("tone", "info")
    if tone not in ("error", "ok", "info"):
        raise ValueError(f"tone must be error, ok or info, not {tone!r}")
    body_html = fields.get("body_html")
    return (
        _shared()
        .get_template("athkit/message.html")
        .render(
            title=title,
            message=message,
            advice=fields.get("advice"),
            tone=tone,
            code=fields.get("code"),
            links=list(fields.get("links", ())),
            body_html=Markup(body_html) if body_html else None,  # noqa: S704 - trusted, documented
            site=fields.get("site"),
            http_status=status if status >= 400 else None,
        )
    )


def message_page(
    title: str,
    message: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **fields: Unpack[MessageFields],
) -> HTMLResponse:
    """A page saying what happened (``message``, in a box coloured by ``tone``: ``"error"``,
    ``"ok"`` or ``"info"``) and what to do next (``advice``, ``links``). ``body_html`` is trusted
    markup placed under the advice (escape anything you put in it)."""
    body = message_html(title, message, status=status, **fields)
    return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


class ErrorPageExtras(TypedDict, total=False):
    """What an error page may carry besides its explanation: buttons to go on (``links``), the
    site's name, and headers of its own."""

    links: Sequence[Link]
    site: str | None
    headers: Mapping[str, str] | None


def _explained(
    text: Explanation, status: int, code: str | None, **extras: Unpack[ErrorPageExtras]
) -> HTMLResponse:
    return message_page(
        text.title,
        text.message,
        advice=text.advice,
        status=status,
        tone="error",
        code=code,
        **extras,
    )


def ath_error_page(exc: ATHError, **extras: Unpack[ErrorPageExtras]) -> HTMLResponse:
    """The page a browser gets for ``exc``: same status as the JSON error, the code in small
    print, and in words what happened and what to do."""
    return _explained(explain(exc), exc.status, exc.code.value, **extras)


def status_page(status: int, **extras: Unpack[ErrorPageExtras]) -> HTMLResponse:
    """The page a browser gets for a bare HTTP error (unknown address, wrong method)."""
    return _explained(explain_status(status), status, None, **extras)
