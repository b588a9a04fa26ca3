"""The agent's HTTP clients: :class:`AsyncATHClient` and its sync twin :class:`ATHClient`.

Both drive the same operations from :mod:`athkit.agent._core`; they differ only in how a
request is sent. Each public method is the :class:`ClientCore` operation of the same name,
listed once in their shared base as an :class:`_Operation`: read from an ``AsyncATHClient`` it
is that operation driven by :func:`_awaiting`, from an ``ATHClient`` by :func:`_blocking`. So
the list of operations, their signatures and their docstrings are each written once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Coroutine, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import MethodType, TracebackType
from typing import Any, Concatenate, Generic, Literal, ParamSpec, Self, TypeVar, overload

import httpx

from athkit.agent._core import LOOPBACK_REDIRECT_URI as LOOPBACK_REDIRECT_URI
from athkit.agent._core import Call, ClientCore, Mode, Operation
from athkit.agent._errors import NETWORK_ERROR, ATHClientError
from athkit.agent._identity import load_key
from athkit.agent._local import Closing
from athkit.agent._store import MemoryCredentialStore, StoredToken
from athkit.protocol import DEFAULT_LIFETIME, PrivateKey

T = TypeVar("T")
P = ParamSpec("P")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def _no_cookies() -> CookieJar:
    # Nothing in ATH uses cookies on the agent side; a proxied provider's Set-Cookie must not
    # ride along on the next call to another provider.
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _network_error(call: Call, exc: httpx.HTTPError) -> ATHClientError:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return ATHClientError(
        NETWORK_ERROR,
        f"{call.method} {call.url} {kind}: {exc or type(exc).__name__}",
        details={"reason": "timeout" if kind == "timed out" else type(exc).__name__},
    )


def _build(http: httpx.Client | httpx.AsyncClient, call: Call, core: ClientCore) -> httpx.Request:
    try:
        return http.build_request(
            call.method,
            call.url,
            json=call.json,
            content=call.content,
            params=call.params,
            headers={**core.default_headers_for(call.url), **call.headers},
        )
    except httpx.InvalidURL as exc:
        raise ValueError(f"cannot send to {call.url!r}: {exc}") from None


@dataclass(slots=True)
class _Done(Generic[T]):
    value: T


def _step(operation: Operation[T], response: httpx.Response | None) -> Call | _Done[T]:
    """Start ``operation`` (``response`` is None) or feed it a response: its next call, or its
    result once it has one."""
    try:
        return next(operation) if response is None else operation.send(response)
    except StopIteration as stop:
        return _Done(stop.value)


def _awaiting(
    operation: Callable[Concatenate[ClientCore, P], Operation[T]],
) -> Callable[Concatenate[AsyncATHClient, P], Coroutine[Any, Any, T]]:
    """The async client's method for a core operation: same arguments, awaited."""

    @functools.wraps(operation)
    async def method(self: AsyncATHClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(operation(self._core, *args, **kwargs))

    return method


def _blocking(
    operation: Callable[Concatenate[ClientCore, P], Operation[T]],
) -> Callable[Concatenate[ATHClient, P], T]:
    """The sync client's method for a core operation: same arguments, blocking."""

    @functools.wraps(operation)
    def method(self: ATHClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(operation(self._core, *args, **kwargs))

    return method


class _Operation(Generic[P, T]):
    """A :class:`ClientCore` operation as a method of both clients: awaited when read from an
    :class:`AsyncATHClient`, blocking when read from an :class:`ATHClient`.

    Read from either class it is that class's plain function (``ATHClient.discover``), as a
    ``def`` in the class body would be; read from an instance, that function bound to it.
    """

    def __init__(self, operation: Callable[Concatenate[ClientCore, P], Operation[T]]) -> None:
        self._awaiting = _awaiting(operation)
        self._blocking = _blocking(operation)
        self.__doc__ = operation.__doc__

    @overload
    def __get__(
        self, client: None, owner: type[AsyncATHClient]
    ) -> Callable[Concatenate[AsyncATHClient, P], Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(
        self, client: None, owner: type[ATHClient]
    ) -> Callable[Concatenate[ATHClient, P], T]: ...
    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(
        self, client: AsyncATHClient, owner: type[Any] | None = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, client: ATHClient, owner: type[Any] | None = None) -> Callable[P, T]: ...
    def __get__(
        self, client: _Common[Any] | None, owner: type[Any] | None = None
    ) -> Self | Callable[..., Any]:
        if client is None:
            if owner is not None and issubclass(owner, AsyncATHClient):
                return self._awaiting
            if owner is not None and issubclass(owner, ATHClient):
                return self._blocking
            return self
        if isinstance(client, AsyncATHClient):
            return MethodType(self._awaiting, client)
        return MethodType(self._blocking, client)


class _Common(Generic[H]):
    """Construction, the read-only accessors and the operations shared by both clients."""

    def __init__(
        self,
        base_url: str,
        *,
        agent_id: str,
        private_key: PrivateKey | str | os.PathLike[str],
        mode: Mode | Literal["auto"] = "auto",
        store: MemoryCredentialStore | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        attestation_lifetime: timedelta = DEFAULT_LIFETIME,
        capabilities: list[str] | None = None,
        http_client: H | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._core = ClientCore(
            base_url,
            agent_id=agent_id,
            private_key=private_key
            if isinstance(private_key, PrivateKey)
            else load_key(private_key),
            mode=mode,
            store=store,
            attestation_lifetime=attestation_lifetime,
            capabilities=capabilities,
            headers=headers,
        )
        self._owns_http = http_client is None
        self._http: H = http_client or self._new_http(timeout=timeout, cookies=_no_cookies())

    def _new_http(self, *, timeout: float | httpx.Timeout, cookies: CookieJar) -> H:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """The gateway's or service's base URL (no trailing slash)."""
        return self._core.base_url

    @property
    def agent_id(self) -> str:
        """This agent's id (the URL of its identity document)."""
        return self._core.agent_id

    @property
    def mode(self) -> Mode | None:
        """``"gateway"`` or ``"native"``; ``None`` until discovery when auto-detecting."""
        return self._core.mode

    @property
    def store(self) -> MemoryCredentialStore:
        """Where client credentials and tokens are kept."""
        return self._core.store

    def token(self, provider_id: str) -> StoredToken | None:
        """The stored token for ``provider_id`` (expired or not), if any."""
        return self._core.store.get_token(self.base_url, self.agent_id, provider_id)

    discover = _Operation(ClientCore.discover)
    register = _Operation(ClientCore.register)
    status = _Operation(ClientCore.status)
    authorize = _Operation(ClientCore.authorize)
    exchange_token = _Operation(ClientCore.exchange_token)
    revoke = _Operation(ClientCore.revoke)
    proxy = _Operation(ClientCore.proxy)
    request = _Operation(ClientCore.request)


class AsyncATHClient(_Common[httpx.AsyncClient]):
    """An ATH agent talking to one gateway or native service, with ``httpx.AsyncClient``.

    ``mode`` is ``"gateway"``, ``"native"``, or ``"auto"`` (decided by discovery: the gateway
    catalog first, then the service document). Client credentials and tokens go to ``store``
    (a :class:`CredentialStore` to keep them across runs; in memory by default). Every call signs
    a fresh attestation with the audience its endpoint expects. Failures raise
    :class:`ATHClientError`. Use as ``async with AsyncATHClient(...) as client:`` so that the
    connection pool is reused and closed.

    ``headers`` are sent on every request to the server's own origin (the ATH endpoints and the
    gateway proxy), for gateways that want a header of their own on each call; they are never
    sent to another origin (a native service's separate ``api_base`` or token endpoint host).
    ``Authorization``, ``Host``, framing headers and ``X-ATH-*`` are the protocol's and refused.
    """

    def _new_http(self, *, timeout: float | httpx.Timeout, cookies: CookieJar) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=timeout, cookies=cookies)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless it was passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def _send(self, call: Call) -> httpx.Response:
        request = _build(self._http, call, self._core)
        try:
            return await self._http.send(request, auth=call.auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise _network_error(call, exc) from None

    async def _run(self, operation: Operation[T]) -> T:
        with closing(operation):
            step = _step(operation, None)
            while isinstance(step, Call):
                step = _step(operation, await self._send(step))
            return step.value


class ATHClient(_Common[httpx.Client], Closing):
    """The synchronous twin of :class:`AsyncATHClient`: same arguments, same methods."""

    def _new_http(self, *, timeout: float | httpx.Timeout, cookies: CookieJar) -> httpx.Client:
        return httpx.Client(timeout=timeout, cookies=cookies)

    def close(self) -> None:
        """Close the connection pool (unless it was passed in)."""
        if self._owns_http:
            self._http.close()

    def _send(self, call: Call) -> httpx.Response:
        request = _build(self._http, call, self._core)
        try:
            return self._http.send(request, auth=call.auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise _network_error(call, exc) from None

    def _run(self, operation: Operation[T]) -> T:
        with closing(operation):
            step = _step(operation, None)
            while isinstance(step, Call):
                step = _step(operation, self._send(step))
            return step.value
