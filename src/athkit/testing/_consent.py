"""Drive the login and consent forms over HTTP, the way a person with a browser would.

For demos and tests: follow redirects one hop at a time with the client's own cookie jar, fill
the login form, tick checkboxes on the consent page and press Allow or Deny. The driver only
sees what the HTML offers: it posts the forms' own hidden fields (CSRF token included), can tick
only checkboxes that are on the page and enabled, and never invents a field.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Required, TypedDict, Unpack
from urllib.parse import urljoin

import httpx

_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class _Input:
    name: str
    type: str
    value: str
    checked: bool
    disabled: bool


@dataclass
class _Form:
    action: str
    method: str
    inputs: list[_Input] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self._current: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._current = _Form(action=a.get("action", ""), method=a.get("method", "get"))
            self.forms.append(self._current)
        elif self._current is None:
            return
        elif tag == "input" and "name" in a:
            self._current.inputs.append(
                _Input(
                    name=a["name"],
                    type=a.get("type", "text").lower(),
                    value=a.get("value", "on" if a.get("type") == "checkbox" else ""),
                    checked="checked" in a,
                    disabled="disabled" in a,
                )
            )
        elif tag == "button" and "name" in a and "disabled" not in a:
            self._current.buttons.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def _forms(html: str) -> list[_Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


class ConsentDriverError(RuntimeError):
    """The pages did not lead where the driver was asked to go."""


@dataclass
class _Plan:
    username: str
    password: str
    scopes: list[str] | None
    allow: bool
    logged_in_once: bool = False

    def next_request(self, page_url: str, html: str) -> tuple[str, list[tuple[str, str]]] | None:
        """The form submission a user would make on this page, or ``None`` (a final page)."""
        for form in _forms(html):
            if form.method.lower() != "post":
                continue
            names = {i.type for i in form.inputs}
            target = urljoin(page_url, form.action or page_url)
            if "password" in names:
                if self.logged_in_once:
                    return None  # the login failed: stop on the page that says so
                self.logged_in_once = True
                return target, self._login_fields(form)
            actions = {v for n, v in form.buttons if n == "action"}
            if {"allow", "deny"} <= actions:
                return target, self._consent_fields(form)
        return None

    def _login_fields(self, form: _Form) -> list[tuple[str, str]]:
        fields = [(i.name, i.value) for i in form.inputs if i.type == "hidden" and not i.disabled]
        for i in form.inputs:
            if i.type == "password":
                fields.append((i.name, self.password))
            elif i.type in ("text", "email") and not i.disabled:
                fields.append((i.name, self.username))
        return fields

    def _consent_fields(self, form: _Form) -> list[tuple[str, str]]:
        fields = [(i.name, i.value) for i in form.inputs if i.type == "hidden" and not i.disabled]
        wanted = None if self.scopes is None else set(self.scopes)
        for i in form.inputs:
            # A disabled ("unavailable") checkbox cannot be ticked by a person, nor here.
            if i.type == "checkbox" and not i.disabled and (wanted is None or i.value in wanted):
                fields.append((i.name, i.value))
        fields.append(("action", "allow" if self.allow else "deny"))
        return fields


def _plan(username: str, password: str, scopes: Iterable[str] | None, allow: bool) -> _Plan:
    return _Plan(username, password, None if scopes is None else list(scopes), allow)


class ConsentChoices(TypedDict, total=False):
    """What a walk through login and consent is told.

    ``username`` and ``password`` sign in. ``scopes`` are the checkboxes to leave ticked
    (default: every available one); a scope the page does not offer, or shows as unavailable
    (disabled), cannot be ticked and is ignored, as it would be for a person. ``allow`` (default
    true) presses Allow, else Deny. The walk stops at the first redirect target that starts with
    ``stop_at`` (not fetched), and gives up after ``max_steps`` (default 20) requests.
    """

    username: Required[str]
    password: Required[str]
    scopes: Iterable[str] | None
    allow: bool
    stop_at: str | None
    max_steps: int


# A walk yields each request to send (method, URL, form fields) and is sent the response.
_Walk = Generator[
    tuple[str, str, dict[str, list[str]] | None], httpx.Response, str | httpx.Response
]


def _walk(start_url: str, choices: ConsentChoices) -> _Walk:
    plan = _plan(
        choices["username"],
        choices["password"],
        choices.get("scopes"),
        choices.get("allow", True),
    )
    stop_at, max_steps = choices.get("stop_at"), choices.get("max_steps", 20)
    response = yield "GET", start_url, None
    for _ in range(max_steps):
        if response.status_code in _REDIRECTS and "location" in response.headers:
            target = urljoin(str(response.url), response.headers["location"])
            if stop_at is not None and target.startswith(stop_at):
                return target
            response = yield "GET", target, None
            continue
        submission = plan.next_request(str(response.url), response.text)
        if submission is None:
            return response
        url, data = submission
        response = yield "POST", url, _encode(data)
    raise ConsentDriverError(f"no final page after {max_steps} steps")


def drive_consent(
    client: httpx.Client, start_url: str, **choices: Unpack[ConsentChoices]
) -> str | httpx.Response:
    """Walk from ``start_url`` through login and consent like a user; see the module docstring
    and :class:`ConsentChoices`.

    After a failed login it returns the login page. Returns the first redirect target that
    starts with ``stop_at`` (not fetched), or else the first page that is neither a redirect nor
    a form the driver knows (an error page, a completion page).
    """
    walk = _walk(start_url, choices)
    try:
        method, url, data = next(walk)
        while True:
            response = client.request(method, url, data=data, follow_redirects=False)
            method, url, data = walk.send(response)
    except StopIteration as stop:
        result: str | httpx.Response = stop.value
        return result


async def drive_consent_async(
    client: httpx.AsyncClient, start_url: str, **choices: Unpack[ConsentChoices]
) -> str | httpx.Response:
    """The async twin of :func:`drive_consent`."""
    walk = _walk(start_url, choices)
    try:
        method, url, data = next(walk)
        while True:
            response = await client.request(method, url, data=data, follow_redirects=False)
            method, url, data = walk.send(response)
    except StopIteration as stop:
        result: str | httpx.Response = stop.value
        return result


def _encode(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    # httpx encodes a list value as repeated fields (scope=a&scope=b), as a browser does.
    out: dict[str, list[str]] = {}
    for name, value in fields:
        out.setdefault(name, []).append(value)
    return out
