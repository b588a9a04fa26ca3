"""ATH for MCP clients (the agent side): an ``httpx2.Auth`` for the ``mcp`` SDK's
streamable-HTTP transport.

:class:`ATHAuth` gets the token through the agent SDK — registration when the agent has none,
the person's consent through a loopback redirect, the stored token afterwards — and sends
``Authorization: Bearer`` and ``X-ATH-Agent-ID`` to the ATH server's origin only. It signs
nothing: attestations belong to the handshake, not to API calls. :func:`ath_error` turns the
JSON-RPC error an ATH-guarded MCP server answers into an :class:`~athkit.agent.ATHClientError`;
for an expired or revoked token its message says to authorize again, and the next
:meth:`ATHAuth.ensure_token` drops the dead token and asks the person again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Mapping, Sequence
from typing import Any

import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from athkit.agent import (
    AGENT_ID_HEADER,
    NOT_AUTHORIZED,
    NOT_REGISTERED,
    AsyncATHClient,
    ATHClientError,
    StoredToken,
    authorize_interactive_async,
)
from athkit.agent._interactive import Opener, UrlNotice, _print_url
from athkit.protocol import JSONRPC_ATH_ERROR, AppDiscovery

#: The SDK's own defaults: 30 s, but 5 minutes to read (a response stream may stay open).
MCP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
#: Server codes after which only a new consent helps.
AUTHORIZE_AGAIN = frozenset({"TOKEN_EXPIRED", "TOKEN_REVOKED", "TOKEN_INVALID"})


def _origin(url: httpx2.URL | str) -> tuple[str, str, int | None]:
    parsed = httpx2.URL(str(url))
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.host, port


def _challenge_code(response: httpx2.Response) -> str | None:
    """The ATH code in ``WWW-Authenticate: Bearer error_description="…"`` (read without the
    body, so a streamed response stays unbuffered)."""
    header = response.headers.get("www-authenticate", "")
    marker = 'error_description="'
    start = header.find(marker)
    if start < 0:
        return None
    end = header.find('"', start + len(marker))
    return header[start + len(marker) : end] if end > start else None


class ATHAuth(httpx2.Auth):
    """Authenticate an MCP client's HTTP requests with the agent's ATH token.

    ``agent`` is an :class:`~athkit.agent.AsyncATHClient` for the gateway or native service;
    ``provider_id`` the provider (optional for a native service: its ``app_id``). When no usable
    token is stored, :meth:`ensure_token` registers the agent (with ``developer``, if it has no
    client credentials yet) and runs the person's consent for ``scopes`` through a loopback
    redirect (``opener``, ``open_browser``, ``on_url`` and ``timeout`` as in
    :func:`~athkit.agent.authorize_interactive_async`). Call ``await auth.ensure_token()``
    before connecting: requests only ever carry the stored token (none at all when nothing
    is stored), and a refusal comes back as an ``MCPError``, which :func:`ath_error` reads.
    """

    def __init__(
        self,
        agent: AsyncATHClient,
        provider_id: str | None = None,
        *,
        scopes: Sequence[str] = (),
        developer: Mapping[str, str] | None = None,
        purpose: str | None = None,
        opener: Opener | None = None,
        open_browser: bool = True,
        on_url: UrlNotice = _print_url,
        timeout: float = 300.0,
    ) -> None:
        self.agent = agent
        self.provider_id = provider_id
        self.scopes = list(scopes)
        self.developer = dict(developer) if developer is not None else None
        self.purpose = purpose
        self._opener = opener
        self._open_browser = open_browser
        self._on_url = on_url
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._dead: set[str] = set()
        self.last_refusal: ATHClientError | None = None

    async def _provider(self) -> str:
        if self.provider_id is None:
            discovery = await self.agent.discover()
            if not isinstance(discovery, AppDiscovery):
                raise ValueError("a gateway serves several providers; pass provider_id")
            self.provider_id = discovery.app_id
        return self.provider_id

    async def ensure_token(self) -> StoredToken:
        """The stored token, or a new one from registration and the person's consent."""
        async with self._lock:
            provider = await self._provider()
            token = self.agent.token(provider)
            if token is not None and self._usable(token):
                return token
            if token is not None and token.access_token in self._dead:
                self.forget(token)  # the server refused it: never send it again
            if not self.scopes:
                raise ATHClientError(
                    NOT_AUTHORIZED,
                    f"no usable ATH token for {provider!r} at {self.agent.base_url}; "
                    "authorize first (or give ATHAuth the scopes to ask for)",
                )
            if self.agent.store.get_client(self.agent.base_url, self.agent.agent_id) is None:
                if self.developer is None:
                    raise ATHClientError(
                        NOT_REGISTERED,
                        f"{self.agent.agent_id} is not registered at {self.agent.base_url}; "
                        "register it first (or give ATHAuth the developer to register with)",
                    )
                await self.agent.register(
                    {provider: self.scopes}, developer=self.developer, purpose=self.purpose
                )
            await authorize_interactive_async(
                self.agent,
                provider,
                self.scopes,
                opener=self._opener,
                open_browser=self._open_browser,
                on_url=self._on_url,
                timeout=self._timeout,
            )
            fresh = self.agent.token(provider)
            assert fresh is not None  # authorize_interactive_async stored it
            return fresh

    def _ours(self, url: httpx2.URL) -> bool:
        return _origin(url) == _origin(self.agent.base_url)

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response]:
        """Synchronous clients are not supported: MCP's HTTP transport is async."""
        raise RuntimeError("ATHAuth works with httpx2.AsyncClient (the mcp SDK's transport)")

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """Add the stored token and agent id (to the ATH server's origin only) — even one that
        looks expired or was refused, so the server's own code (``TOKEN_EXPIRED``,
        ``TOKEN_REVOKED``) reaches the caller — and remember a refusal."""
        if not self._ours(request.url):
            # Never hand the ATH token to another origin.
            yield request
            return
        token = self.agent.token(await self._provider())
        if token is None:
            # Never authorized here. Consent is never started from inside a transport request:
            # the request goes out bare, the server's refusal reaches the caller as an
            # MCPError, and `ensure_token()` is how the agent asks the person.
            yield request
            return
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        request.headers[AGENT_ID_HEADER] = self.agent.agent_id
        response = yield request
        if response.status_code == 401:
            code = _challenge_code(response) or "TOKEN_INVALID"
            if code in AUTHORIZE_AGAIN:
                # Remembered, not dropped here: the session's next requests keep showing the
                # same refusal, and the next ensure_token() asks the person again.
                self._dead.add(token.access_token)
                self.last_refusal = authorize_again(code, token.provider_id)

    def _usable(self, token: StoredToken | None) -> bool:
        return token is not None and not token.is_expired() and token.access_token not in self._dead

    def forget(self, token: StoredToken) -> None:
        """Drop ``token`` from the store (when it is still the stored one)."""
        stored = self.agent.token(token.provider_id)
        if stored is not None and stored.access_token == token.access_token:
            self.agent.store.delete_token(
                self.agent.base_url, self.agent.agent_id, stored.provider_id
            )


def authorize_again(code: str, provider_id: str | None, message: str = "") -> ATHClientError:
    """The "authorize again" error for a dead token."""
    reason = {
        "TOKEN_EXPIRED": "the ATH token expired",
        "TOKEN_REVOKED": "the ATH token was revoked",
    }.get(code, "the ATH token is no longer accepted")
    text = f"{reason}; the person must authorize the agent again"
    if provider_id:
        text += f" for {provider_id!r}"
    return ATHClientError(code, text + (f" (server: {message})" if message else ""), status=401)


def ath_error(exc: BaseException) -> ATHClientError | None:
    """The ATH refusal inside an MCP error (``MCPError`` with an ATH body, also inside the
    exception group that ``async with Client(...)`` raises when the session cannot open), else
    ``None``.

    ``TOKEN_EXPIRED``, ``TOKEN_REVOKED`` and ``TOKEN_INVALID`` come back as an "authorize
    again" error.
    """
    if isinstance(exc, BaseExceptionGroup):
        # An error while the session opens leaves `async with Client(...)` inside the
        # transport's task-group error.
        for inner in exc.exceptions:
            found = ath_error(inner)
            if found is not None:
                return found
        return None
    if not isinstance(exc, MCPError) or exc.code != JSONRPC_ATH_ERROR:
        return None
    data: Any = exc.data
    if not isinstance(data, dict) or not isinstance(data.get("code"), str):
        return None
    code, message = data["code"], str(data.get("message") or exc.message)
    status = data.get("status") if isinstance(data.get("status"), int) else None
    details = data.get("details") if isinstance(data.get("details"), dict) else None
    if code in AUTHORIZE_AGAIN:
        error = authorize_again(code, (details or {}).get("provider_id"), message)
        error.details.update(details or {})
        return error
    return ATHClientError(code, message, status=status, details=details)


@contextlib.asynccontextmanager
async def ath_streamable_http(url: str, auth: ATHAuth, **options: Any) -> AsyncIterator[Any]:
    """The ``mcp`` SDK's streamable-HTTP transport to ``url`` with ``auth`` on every request;
    pass it to ``mcp.Client(...)``. ``options`` go to ``streamable_http_client``."""
    async with (
        httpx2.AsyncClient(auth=auth, timeout=MCP_TIMEOUT) as http,
        streamable_http_client(url, http_client=http, **options) as streams,
    ):
        yield streams
