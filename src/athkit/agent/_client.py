"""The agent's HTTP clients: :class:`AsyncATHClient` and its sync twin :class:`ATHClient`.

Both drive the same operations from :mod:`athkit.agent._core`; they differ only in how a
request is sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx

from athkit.agent._core import LOOPBACK_REDIRECT_URI as LOOPBACK_REDIRECT_URI
from athkit.agent._core import Call, ClientCore, Discovery, Mode, Operation, PendingAuthorization
from athkit.agent._errors import NETWORK_ERROR, ATHClientError
from athkit.agent._identity import load_key
from athkit.agent._store import MemoryCredentialStore, StoredToken
from athkit.protocol import (
    DEFAULT_LIFETIME,
    AgentStatusResponse,
    Developer,
    PrivateKey,
    ProviderScopes,
    RegisterResponse,
    TokenResponse,
)

T = TypeVar("T")
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


def _core(
    base_url: str,
    agent_id: str,
    private_key: PrivateKey | str | os.PathLike[str],
    mode: Mode | Literal["auto"],
    store: MemoryCredentialStore | None,
    attestation_lifetime: timedelta,
    capabilities: list[str] | None,
    headers: Mapping[str, str] | None,
) -> ClientCore:
    key = private_key if isinstance(private_key, PrivateKey) else load_key(private_key)
    return ClientCore(
        base_url,
        agent_id=agent_id,
        private_key=key,
        mode=mode,
        store=store,
        attestation_lifetime=attestation_lifetime,
        capabilities=capabilities,
        headers=headers,
    )


class _Common:
    """Read-only accessors shared by both clients."""

    _core: ClientCore

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


class AsyncATHClient(_Common):
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
        http_client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._core = _core(
            base_url,
            agent_id,
            private_key,
            mode,
            store,
            attestation_lifetime,
            capabilities,
            headers,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, cookies=_no_cookies())

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

    async def _run(self, operation: Operation[T]) -> T:
        try:
            call = next(operation)
            while True:
                request = _build(self._http, call, self._core)
                try:
                    response = await self._http.send(
                        request, auth=call.auth or httpx.USE_CLIENT_DEFAULT
                    )
                except httpx.HTTPError as exc:
                    raise _network_error(call, exc) from None
                call = operation.send(response)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            operation.close()

    async def discover(self) -> Discovery:
        """The gateway catalog (``GatewayDiscovery``) or service document (``AppDiscovery``)."""
        return await self._run(self._core.discover())

    async def register(
        self,
        providers: Mapping[str, Sequence[str]] | Sequence[ProviderScopes],
        *,
        developer: Developer | Mapping[str, str],
        purpose: str | None = None,
        redirect_uris: Sequence[str] | None = (LOOPBACK_REDIRECT_URI,),
    ) -> RegisterResponse:
        """Register the agent (ATH §4.1); ``providers`` maps provider_id → scopes.

        ``redirect_uris`` defaults to ``http://127.0.0.1/callback`` (any loopback port matches),
        which :func:`authorize_interactive` uses. A second registration raises
        ``AGENT_ALREADY_REGISTERED``.
        """
        return await self._run(
            self._core.register(
                providers, developer=developer, purpose=purpose, redirect_uris=redirect_uris
            )
        )

    async def status(self, client_id: str | None = None) -> AgentStatusResponse:
        """The registration's status (ATH §4.2)."""
        return await self._run(self._core.status(client_id))

    async def authorize(
        self,
        provider_id: str | None,
        scopes: Sequence[str],
        *,
        user_redirect_uri: str | None = None,
        state: str | None = None,
        resource: str | None = None,
    ) -> PendingAuthorization:
        """Start the user's consent (ATH §4.3); open ``.authorization_url`` in their browser.

        ``state`` is generated (256 bits) unless given; compare it with the redirect's.
        """
        return await self._run(
            self._core.authorize(
                provider_id,
                scopes,
                user_redirect_uri=user_redirect_uri,
                state=state,
                resource=resource,
            )
        )

    async def exchange_token(self, code: str | None, ath_session_id: str) -> TokenResponse:
        """Exchange the ATH code from the redirect (or the completion page) for an access token
        (ATH §4.5); ``code=None`` for a session without a redirect URI, once the user is done."""
        return await self._run(self._core.exchange_token(code, ath_session_id))

    async def revoke(self, provider_id: str | None = None, *, token: str | None = None) -> None:
        """Revoke the stored token for ``provider_id`` (or the given ``token``), ATH §4.7."""
        await self._run(self._core.revoke(provider_id, token=token))

    async def proxy(
        self,
        provider_id: str,
        method: str,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        raise_for_ath_error: bool = True,
    ) -> httpx.Response:
        """Call a provider's API through the gateway (ATH §4.6); the raw response comes back.

        A refusal by the gateway (an ATH §7 body) raises :class:`ATHClientError`; the
        provider's own answers, errors included, are returned unchanged.
        """
        return await self._run(
            self._core.api_call(
                "gateway",
                provider_id,
                method,
                path,
                params=params,
                headers=headers,
                content=content,
                json=json,
                raise_for_ath_error=raise_for_ath_error,
            )
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        provider_id: str | None = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        raise_for_ath_error: bool = True,
    ) -> httpx.Response:
        """Call a native service's API at ``{api_base}{path}`` with the stored token."""
        return await self._run(
            self._core.api_call(
                "native",
                provider_id,
                method,
                path,
                params=params,
                headers=headers,
                content=content,
                json=json,
                raise_for_ath_error=raise_for_ath_error,
            )
        )


class ATHClient(_Common):
    """The synchronous twin of :class:`AsyncATHClient`: same arguments, same methods."""

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
        http_client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._core = _core(
            base_url,
            agent_id,
            private_key,
            mode,
            store,
            attestation_lifetime,
            capabilities,
            headers,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, cookies=_no_cookies())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (unless it was passed in)."""
        if self._owns_http:
            self._http.close()

    def _run(self, operation: Operation[T]) -> T:
        try:
            call = next(operation)
            while True:
                request = _build(self._http, call, self._core)
                try:
                    response = self._http.send(request, auth=call.auth or httpx.USE_CLIENT_DEFAULT)
                except httpx.HTTPError as exc:
                    raise _network_error(call, exc) from None
                call = operation.send(response)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            operation.close()

    def discover(self) -> Discovery:
        """See :meth:`AsyncATHClient.discover`."""
        return self._run(self._core.discover())

    def register(
        self,
        providers: Mapping[str, Sequence[str]] | Sequence[ProviderScopes],
        *,
        developer: Developer | Mapping[str, str],
        purpose: str | None = None,
        redirect_uris: Sequence[str] | None = (LOOPBACK_REDIRECT_URI,),
    ) -> RegisterResponse:
        """See :meth:`AsyncATHClient.register`."""
        return self._run(
            self._core.register(
                providers, developer=developer, purpose=purpose, redirect_uris=redirect_uris
            )
        )

    def status(self, client_id: str | None = None) -> AgentStatusResponse:
        """See :meth:`AsyncATHClient.status`."""
        return self._run(self._core.status(client_id))

    def authorize(
        self,
        provider_id: str | None,
        scopes: Sequence[str],
        *,
        user_redirect_uri: str | None = None,
        state: str | None = None,
        resource: str | None = None,
    ) -> PendingAuthorization:
        """See :meth:`AsyncATHClient.authorize`."""
        return self._run(
            self._core.authorize(
                provider_id,
                scopes,
                user_redirect_uri=user_redirect_uri,
                state=state,
                resource=resource,
            )
        )

    def exchange_token(self, code: str | None, ath_session_id: str) -> TokenResponse:
        """See :meth:`AsyncATHClient.exchange_token`."""
        return self._run(self._core.exchange_token(code, ath_session_id))

    def revoke(self, provider_id: str | None = None, *, token: str | None = None) -> None:
        """See :meth:`AsyncATHClient.revoke`."""
        self._run(self._core.revoke(provider_id, token=token))

    def proxy(
        self,
        provider_id: str,
        method: str,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        raise_for_ath_error: bool = True,
    ) -> httpx.Response:
        """See :meth:`AsyncATHClient.proxy`."""
        return self._run(
            self._core.api_call(
                "gateway",
                provider_id,
                method,
                path,
                params=params,
                headers=headers,
                content=content,
                json=json,
                raise_for_ath_error=raise_for_ath_error,
            )
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        provider_id: str | None = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        raise_for_ath_error: bool = True,
    ) -> httpx.Response:
        """See :meth:`AsyncATHClient.request`."""
        return self._run(
            self._core.api_call(
                "native",
                provider_id,
                method,
                path,
                params=params,
                headers=headers,
                content=content,
                json=json,
                raise_for_ath_error=raise_for_ath_error,
            )
        )
