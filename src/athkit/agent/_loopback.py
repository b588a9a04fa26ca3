"""A one-shot HTTP listener on 127.0.0.1 that catches the authorization redirect (ATH §4.4).

Loopback redirect URIs match on any port (RFC 8252 §7.3), so the agent registers
``http://127.0.0.1/callback`` once and listens on a random free port each time.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from athkit.agent._errors import (
    AUTHORIZATION_TIMEOUT,
    STATE_MISMATCH,
    USER_DENIED,
    ATHClientError,
)
from athkit.agent._local import BackgroundServer, QuietHandler
from athkit.pages import PAGE_HEADERS, message_html

CALLBACK_PATH = "/callback"


@dataclass(frozen=True, slots=True)
class Redirect:
    """What the browser brought back to the listener."""

    code: str | None
    state: str | None
    error: str | None
    error_description: str | None


class _Handler(QuietHandler):
    server: _OneShotServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self._page(
                404,
                "Page not found",
                "This address only waits for the agent's authorization redirect.",
                "Go back to the agent; it prints the link to open.",
            )
            return
        query = parse_qs(parts.query)

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        redirect = Redirect(one("code"), one("state"), one("error"), one("error_description"))
        if redirect.error == "access_denied":
            self._page(
                200,
                "Access not granted",
                "You did not allow the agent access.",
                "Nothing was shared. You can close this window.",
                tone="info",
            )
        elif redirect.error or not redirect.code:
            self._page(
                400,
                "Authorization failed",
                "The agent was not authorized"
                + (f": {redirect.error}." if redirect.error else "."),
                "Go back to the agent; it tells you what happened and how to try again.",
            )
        elif not self.server.state_matches(redirect.state):
            self._page(
                400,
                "Authorization failed",
                "This answer does not belong to the request the agent is waiting for.",
                "Go back to the agent and start the authorization again.",
            )
        else:
            self._page(
                200,
                "Authorization complete",
                "The agent is connected.",
                "You can close this window and go back to the agent.",
                tone="ok",
            )
        self.server.deliver(redirect)

    def _page(
        self, status: int, title: str, text: str, advice: str, *, tone: str = "error"
    ) -> None:
        body = message_html(title, text, advice=advice, status=status, tone=tone).encode()
        # The code is in this page's URL: PAGE_HEADERS keep it out of any Referer (no-referrer).
        self.answer(status, body, content_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


class _OneShotServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, expected_state: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.expected_state = expected_state
        self.received = threading.Event()
        self.redirect: Redirect | None = None
        self._lock = threading.Lock()

    def state_matches(self, state: str | None) -> bool:
        # Constant-time: the state is the only thing tying this redirect to our request.
        return state is not None and hmac.compare_digest(
            state.encode(), self.expected_state.encode()
        )

    def deliver(self, redirect: Redirect) -> None:
        with self._lock:
            if self.redirect is None:
                self.redirect = redirect
                self.received.set()


class LoopbackListener(BackgroundServer[_OneShotServer]):
    """Listens on ``http://127.0.0.1:<random port>/callback`` for one authorization redirect.

    Use as a context manager: the socket is closed when the block ends, whatever happens
    (success, timeout, Ctrl-C).
    """

    def __init__(self, expected_state: str) -> None:
        super().__init__(_OneShotServer(expected_state), thread_name="ath-redirect")
        self.redirect_uri = f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    def wait(self, timeout: float) -> str:
        """Block until the redirect arrives; return the ATH code (or raise why not)."""
        deadline = time.monotonic() + timeout
        # Short waits keep Ctrl-C responsive.
        while not self._server.received.wait(
            timeout=min(0.5, max(0.0, deadline - time.monotonic()))
        ):
            if time.monotonic() >= deadline:
                raise _timeout(timeout)
        return self._result()

    async def wait_async(self, timeout: float) -> str:  # noqa: ASYNC109
        """:meth:`wait` without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while not self._server.received.is_set():
            if time.monotonic() >= deadline:
                raise _timeout(timeout)
            await asyncio.sleep(0.05)
        return self._result()

    def _result(self) -> str:
        redirect = self._server.redirect
        assert redirect is not None
        if redirect.error == "access_denied":
            raise ATHClientError(
                USER_DENIED,
                "the user refused access on the consent page",
                details={"error": redirect.error},
            )
        if redirect.error or not redirect.code:
            detail = redirect.error_description or redirect.error or "no code in the redirect"
            raise ATHClientError(
                "OAUTH_ERROR",
                f"authorization failed: {detail}",
                details={"error": redirect.error or "missing_code"},
            )
        if not self._server.state_matches(redirect.state):
            raise ATHClientError(
                STATE_MISMATCH,
                "the redirect's state differs from the one this agent sent; the code was not used",
            )
        return redirect.code


def _timeout(seconds: float) -> ATHClientError:
    return ATHClientError(
        AUTHORIZATION_TIMEOUT,
        f"no authorization came back within {seconds:g}s; run the authorize step again",
    )
