"""Consent drivers: how the conformance run gets a user's consent at the server under test.

* :class:`FormsDriver` signs in and answers athkit's OAuth server forms (login, consent), as a
  person would; it can deny and untick scopes.
* :class:`FollowRedirectsDriver` follows redirects only, for test providers that approve at once.
* :class:`BrowserDriver` asks a person: it prints (and opens) the URL and catches the redirect on
  a 127.0.0.1 listener.

Each driver returns the query of the redirect that reached the agent (``code``/``state`` or
``error``/``state``). Drivers that keep a cookie jar can also stop at the implementer's callback,
so the run can check the browser binding (ATH §4.3) by delivering that callback from another
"browser".
"""

from __future__ import annotations

import webbrowser
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from athkit.agent import ATHClientError, LoopbackListener
from athkit.testing import drive_consent

_REDIRECTS = (301, 302, 303, 307, 308)


class ConsentFailed(Exception):
    """The driver could not reach the agent's redirect (a page stopped it)."""


def query_of(url: str) -> dict[str, str]:
    """The query of ``url`` as single values."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class Stopped:
    """A consent stopped at the implementer's callback, in the browser that started it."""

    browser: httpx.Client
    callback_url: str


class ConsentDriver(Protocol):
    """Gets a user's consent for an authorization URL (see the module docstring)."""

    name: str
    can_deny: bool
    can_choose_scopes: bool
    can_stop_at_callback: bool
    own_redirect: bool  # True: the driver supplies its own redirect URI (a listener)

    def redirect_uri(self, default: str) -> str:
        """The redirect URI to send with the authorization request."""
        ...

    def consent(
        self,
        url: str,
        *,
        redirect_uri: str,
        state: str,
        allow: bool = True,
        scopes: Sequence[str] | None = None,
    ) -> dict[str, str]:
        """Walk the consent; return the query the agent's redirect carried."""
        ...

    def to_callback(self, url: str, callback: str, *, allow: bool = True) -> Stopped:
        """Walk the consent but stop at the implementer's callback (not fetched)."""
        ...

    def close(self) -> None:
        """Free what the driver holds."""
        ...


class _HttpDriver:
    can_stop_at_callback = True
    own_redirect = False

    def __init__(self, *, timeout: float = 20.0, headers: dict[str, str] | None = None) -> None:
        self._timeout = timeout
        self._headers = headers or {}

    def _browser(self) -> httpx.Client:
        return httpx.Client(timeout=self._timeout, trust_env=False)

    def redirect_uri(self, default: str) -> str:
        return default

    def _walk(
        self,
        browser: httpx.Client,
        url: str,
        stop_at: str,
        allow: bool,
        scopes: Sequence[str] | None,
    ) -> str:
        raise NotImplementedError

    def consent(
        self,
        url: str,
        *,
        redirect_uri: str,
        state: str,
        allow: bool = True,
        scopes: Sequence[str] | None = None,
    ) -> dict[str, str]:
        with self._browser() as browser:
            return query_of(self._walk(browser, url, redirect_uri, allow, scopes))

    def to_callback(self, url: str, callback: str, *, allow: bool = True) -> Stopped:
        browser = self._browser()
        try:
            return Stopped(browser, self._walk(browser, url, callback, allow, None))
        except BaseException:
            browser.close()
            raise

    def close(self) -> None:
        pass


class FormsDriver(_HttpDriver):
    """Signs in and answers the consent form of athkit's OAuth server (or one like it)."""

    name = "forms"
    can_deny = True
    can_choose_scopes = True

    def __init__(self, username: str, password: str, *, timeout: float = 20.0) -> None:
        super().__init__(timeout=timeout)
        self._username, self._password = username, password

    def _walk(
        self,
        browser: httpx.Client,
        url: str,
        stop_at: str,
        allow: bool,
        scopes: Sequence[str] | None,
    ) -> str:
        result = drive_consent(
            browser,
            url,
            username=self._username,
            password=self._password,
            scopes=scopes,
            allow=allow,
            stop_at=stop_at,
        )
        if isinstance(result, str):
            return result
        raise ConsentFailed(
            f"consent stopped on HTTP {result.status_code} at {result.url}: {result.text[:200]}"
        )


class FollowRedirectsDriver(_HttpDriver):
    """Follows redirects only: for test providers that approve without a page."""

    name = "follow"
    can_deny = False
    can_choose_scopes = False

    def _walk(
        self,
        browser: httpx.Client,
        url: str,
        stop_at: str,
        allow: bool,
        scopes: Sequence[str] | None,
    ) -> str:
        current = url
        for _ in range(20):
            response = browser.get(current, follow_redirects=False)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                raise ConsentFailed(
                    f"no redirect from {current} (HTTP {response.status_code}): "
                    "this provider shows a page; use --consent forms or browser"
                )
            current = str(urljoin(current, location))
            if current.startswith(stop_at):
                return current
        raise ConsentFailed("more than 20 redirects")


class BrowserDriver:
    """A person consents in their own browser; the redirect comes back to a 127.0.0.1 port."""

    name = "browser"
    can_deny = False
    can_choose_scopes = False
    can_stop_at_callback = False
    own_redirect = True

    def __init__(self, *, timeout: float = 300.0, announce: Callable[[str], None] = print) -> None:
        self._timeout = timeout
        self._announce = announce
        self._listener: LoopbackListener | None = None

    def redirect_uri(self, default: str) -> str:
        raise NotImplementedError("use consent(); the listener's URI is made per consent")

    def listener(self, state: str) -> LoopbackListener:
        """A fresh listener for one consent; its ``redirect_uri`` goes to /ath/authorize."""
        self.close()
        self._listener = LoopbackListener(state)
        return self._listener

    def consent(
        self,
        url: str,
        *,
        redirect_uri: str,
        state: str,
        allow: bool = True,
        scopes: Sequence[str] | None = None,
    ) -> dict[str, str]:
        listener = self._listener
        if listener is None:
            raise ConsentFailed("no listener; call listener(state) before authorizing")
        self._announce(f"Open this URL, sign in and allow access:\n\n  {url}\n")
        webbrowser.open(url)
        try:
            code = str(listener.wait(self._timeout))
        except ATHClientError as exc:
            if exc.code == "USER_DENIED":
                return {"error": "access_denied", "state": state}
            raise ConsentFailed(str(exc)) from None
        finally:
            self.close()
        return {"code": code, "state": state}

    def to_callback(self, url: str, callback: str, *, allow: bool = True) -> Stopped:
        raise NotImplementedError("a person's browser cannot be stopped at the callback")

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
