"""Shared plumbing of the demo's stories: recording steps, and small HTTP helpers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from athkit.agent import ATHClientError
from athkit.demo._report import Reporter, Row, Step, Summary


class StoryError(RuntimeError):
    """A step could not even be attempted (a server did not answer at all, a page changed)."""


class Story:
    """Collects the steps of one run, hands each to the reporter, and builds the summary."""

    def __init__(self, reporter: Reporter, mode: str, *, started: float | None = None) -> None:
        self.reporter = reporter
        self.mode = mode
        self.steps: list[Step] = []
        self.rows: list[Row] = []
        self._started = started if started is not None else time.monotonic()

    def record(self, step: Step) -> Step:
        """Keep and report one step."""
        self.steps.append(step)
        self.reporter.step(step)
        return step

    def row(self, row: Row) -> None:
        """Add a line to the closing table."""
        self.rows.append(row)

    def finish(self) -> Summary:
        """The summary: ok only if every step behaved as expected and the table is complete."""
        failed = [s.step for s in self.steps if not s.ok]
        summary = Summary(
            ok=not failed and len(self.rows) >= 4,
            mode=self.mode,
            rows=self.rows,
            elapsed_seconds=round(time.monotonic() - self._started, 2),
            failed_steps=failed,
        )
        self.reporter.summary(summary)
        return summary


def error_code(response: httpx.Response) -> str | None:
    """The ``code`` of a JSON error body, if there is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def error_message(response: httpx.Response) -> str:
    """The ``message`` of a JSON error body, or the status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return f"HTTP {response.status_code}"


def client_error(exc: ATHClientError) -> str:
    """``CODE (HTTP n): message`` for narration."""
    return str(exc)


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a redirect target (first value of each)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def scopes_text(scopes: Sequence[str]) -> str:
    """``a, b, c`` or ``(none)``."""
    return ", ".join(scopes) if scopes else "(none)"


class _Forms(HTMLParser):
    """The POST forms of a page, with their hidden fields."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {"action": a.get("action", ""), "fields": {}}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("type") == "hidden":
            self._current["fields"][a.get("name", "")] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def find_form(html: str, action_suffix: str, **match: str) -> tuple[str, dict[str, str]]:
    """The form posting to ``…action_suffix`` whose hidden fields include ``match``."""
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        fields: dict[str, str] = form["fields"]
        if str(form["action"]).endswith(action_suffix) and all(
            fields.get(k) == v for k, v in match.items()
        ):
            return str(form["action"]), fields
    raise StoryError(f"no form posting to {action_suffix} with {match} on the page")
