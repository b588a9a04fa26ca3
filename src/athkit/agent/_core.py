"""The handshake, once, without I/O: what to send for each step and what the answer means.

Each operation is a generator that yields :class:`Call` objects and receives the
``httpx.Response`` to each; its return value is the typed result. :class:`~athkit.agent.ATHClient`
and :class:`~athkit.agent.AsyncATHClient` only drive these generators over an ``httpx.Client``
or ``httpx.AsyncClient``, so both behave identically by construction.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypedDict, TypeVar, Unpack
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from athkit.agent._errors import (
    BAD_RESPONSE,
    HTTP_ERROR,
    NOT_AUTHORIZED,
    NOT_REGISTERED,
    PROVIDER_REQUIRED,
    TOKEN_EXPIRED,
    TOKEN_REVOKED,
    WRONG_MODE,
    ATHClientError,
)
from athkit.agent._store import MemoryCredentialStore, StoredClient, StoredToken
from athkit.protocol import (
    AGENT_ID_HEADER,
    AGENTS_PATH,
    APP_DISCOVERY_PATH,
    ATTESTATION_HEADER,
    AUTHORIZE_PATH,
    DEFAULT_LIFETIME,
    GATEWAY_DISCOVERY_PATH,
    PROXY_PREFIX,
    REGISTER_PATH,
    RESERVED_HEADER_PREFIX,
    REVOKE_PATH,
    TOKEN_PATH,
    AgentStatusResponse,
    AppDiscovery,
    AuthorizeRequest,
    AuthorizeResponse,
    Developer,
    ErrorCode,
    GatewayDiscovery,
    PrivateKey,
    ProviderScopes,
    RegisterRequest,
    RegisterResponse,
    RevokeRequest,
    TokenRequest,
    TokenResponse,
    create_attestation,
    origin_of,
)

Mode = Literal["gateway", "native"]
Discovery = GatewayDiscovery | AppDiscovery
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Operation = Generator["Call", httpx.Response, T]


class RequestOptions(TypedDict, total=False):
    """What an API call may add to the request; the defaults are :meth:`ClientCore.api_call`'s.

    ``raise_for_ath_error=False`` returns an ATH §7 refusal instead of raising it.
    """

    params: Any
    headers: Mapping[str, str] | None
    content: bytes | str | None
    json: Any
    raise_for_ath_error: bool


# Registration lists this; ATH §4.4 (RFC 8252 §7.3) lets it match any loopback port.
LOOPBACK_REDIRECT_URI = "http://127.0.0.1/callback"
NATIVE_DISCOVERY_PATH = APP_DISCOVERY_PATH
_ATH_CODES = frozenset(code.value for code in ErrorCode)


@dataclass(slots=True)
class Call:
    """One HTTP request an operation needs sent."""

    method: str
    url: str
    json: Any = None
    content: bytes | str | None = None
    params: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None


class PendingAuthorization(AuthorizeResponse):
    """The answer of ``POST /ath/authorize`` plus what the agent must remember until the
    redirect comes back: the ``state`` it sent, the provider and the redirect URI."""

    state: str
    provider_id: str
    user_redirect_uri: str | None = None


# Headers the protocol (or HTTP framing) sets itself; a default header must not replace them.
_RESERVED_HEADERS = frozenset(
    {"authorization", "host", "content-length", "content-type", "transfer-encoding", "connection"}
)
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


def check_default_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Validated extra headers for every call; ``ValueError`` naming what is wrong."""
    checked: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if not name or not set(lower) <= _TOKEN_CHARS:
            raise ValueError(f"header name {name!r} is not a valid HTTP header name")
        if lower in _RESERVED_HEADERS or lower.startswith(RESERVED_HEADER_PREFIX.lower()):
            raise ValueError(
                f"header {name!r} is set by the ATH client itself; it cannot be a default"
            )
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"the value of header {name!r} contains a line break")
        checked[name] = value.strip()
    return checked


def new_state() -> str:
    """A fresh OAuth ``state``: 256 bits from the CSPRNG (ATH §4.3 asks for at least 128)."""
    return secrets.token_urlsafe(32)


def error_from_response(response: httpx.Response) -> ATHClientError:
    """The :class:`ATHClientError` for an error response (ATH §7 body or not)."""
    body = _json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        details = body.get("details")
        message = str(body.get("message") or f"HTTP {response.status_code}")
        if response.status_code == 404:
            # Which address was wrong matters more than the code: show the full URL tried.
            message += f" ({response.request.method} {response.request.url})"
        return ATHClientError(
            body["code"],
            message,
            status=response.status_code,
            details=details if isinstance(details, dict) else None,
        )
    text = response.text[:200].strip() if response.content else ""
    return ATHClientError(
        HTTP_ERROR,
        f"{response.request.method} {response.request.url} answered HTTP "
        f"{response.status_code} without an ATH error body" + (f": {text}" if text else ""),
        status=response.status_code,
    )


def is_ath_error(response: httpx.Response) -> bool:
    """Whether an API-call response is a refusal by the ATH layer rather than the provider's.

    The proxy returns the provider's answers unchanged (ATH §4.6), so only a body shaped like
    ATH §7 with one of the protocol's codes counts as the gateway's (or service's) refusal.
    """
    if response.status_code < 400:
        return False
    body = _json_or_none(response)
    return (
        isinstance(body, dict)
        and body.get("code") in _ATH_CODES
        and isinstance(body.get("message"), str)
    )


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def parse(response: httpx.Response, model: type[M]) -> M:
    """The protocol message in a success response, or the server's error raised."""
    if response.status_code >= 400:
        raise error_from_response(response)
    try:
        return model.model_validate(response.json())
    except (ValueError, UnicodeDecodeError, ValidationError) as exc:
        reason = (
            f"field {'.'.join(str(p) for p in exc.errors()[0]['loc'])}: {exc.errors()[0]['msg']}"
            if isinstance(exc, ValidationError)
            else "not JSON"
        )
        raise ATHClientError(
            BAD_RESPONSE,
            f"{response.request.url} did not answer a valid {model.__name__} ({reason})",
            status=response.status_code,
        ) from None


class ClientCore:
    """State and logic shared by the sync and async clients."""

    def __init__(
        self,
        base_url: str,
        *,
        agent_id: str,
        private_key: PrivateKey,
        mode: Mode | Literal["auto"] = "auto",
        store: MemoryCredentialStore | None = None,
        attestation_lifetime: timedelta = DEFAULT_LIFETIME,
        capabilities: list[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL must start with http:// or https://, got {base_url!r}")
        try:
            httpx.URL(base_url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"base URL {base_url!r} is not a valid URL: {exc}") from None
        if mode not in ("auto", "gateway", "native"):
            raise ValueError(f"mode must be 'auto', 'gateway' or 'native', got {mode!r}")
        self.base_url = base_url.rstrip("/")
        self.agent_id = agent_id
        self.private_key = private_key
        self.mode: Mode | None = None if mode == "auto" else mode
        self.store = store if store is not None else MemoryCredentialStore()
        self.discovery: Discovery | None = None
        self._lifetime = attestation_lifetime
        self._capabilities = capabilities
        self.default_headers = check_default_headers(headers or {})
        self._origin = origin_of(self.base_url)

    def default_headers_for(self, url: str) -> dict[str, str]:
        """The default headers for a request to ``url``: only on the server's own origin."""
        if not self.default_headers:
            return {}
        try:
            same = origin_of(url) == self._origin
        except ValueError:
            same = False
        return dict(self.default_headers) if same else {}

    # --- helpers ---------------------------------------------------------------------------

    def attest(self, audience: str) -> str:
        """A fresh attestation for one call; never reused (a replayed jti is refused, ATH §2)."""
        return create_attestation(
            self.private_key,
            agent_id=self.agent_id,
            audience=audience,
            lifetime=self._lifetime,
            capabilities=self._capabilities,
        )

    def _endpoint(self, which: Literal["register", "authorize", "token"]) -> str:
        if isinstance(self.discovery, AppDiscovery):
            auth = self.discovery.auth
            if which == "register" and auth.registration_endpoint:
                return auth.registration_endpoint
            if which == "authorize":
                return auth.authorization_endpoint
            if which == "token":
                return auth.token_endpoint
        if isinstance(self.discovery, GatewayDiscovery) and which == "register":
            return self.discovery.agent_registration_endpoint
        path = {"register": REGISTER_PATH, "authorize": AUTHORIZE_PATH}
        return self.base_url + path.get(which, TOKEN_PATH)

    def client_credentials(self) -> StoredClient:
        """The stored registration of this agent at this server."""
        stored = self.store.get_client(self.base_url, self.agent_id)
        if stored is None:
            raise ATHClientError(
                NOT_REGISTERED,
                f"{self.agent_id} has no client credentials for {self.base_url}; register first",
            )
        return stored

    def usable_token(self, provider_id: str) -> StoredToken:
        """The stored token for ``provider_id``; refuses to hand out an expired one."""
        token = self.store.get_token(self.base_url, self.agent_id, provider_id)
        if token is None:
            raise ATHClientError(
                NOT_AUTHORIZED,
                f"no token for provider {provider_id!r} at {self.base_url}; authorize first",
            )
        if token.is_expired():
            raise ATHClientError(
                TOKEN_EXPIRED,
                f"the token for provider {provider_id!r} expired; "
                "the user must authorize again (run the authorize step)",
                details={"provider_id": provider_id, "expired_at": token.expires_at},
            )
        return token

    def _ensure_discovery(self) -> Operation[Discovery]:
        if self.discovery is None:
            return (yield from self.discover())
        return self.discovery

    def _ensure_mode(self) -> Operation[Mode]:
        if self.mode is None or (self.mode == "native" and self.discovery is None):
            yield from self._ensure_discovery()
        assert self.mode is not None
        return self.mode

    # --- operations ------------------------------------------------------------------------

    def discover(self) -> Operation[Discovery]:
        """The gateway catalog (``GatewayDiscovery``) or service document (``AppDiscovery``),
        ATH §3; in ``"auto"`` mode this decides the mode."""
        if self.mode in (None, "gateway"):
            response = yield Call("GET", self.base_url + GATEWAY_DISCOVERY_PATH)
            if self.mode == "gateway" or response.status_code != 404:
                self.discovery = parse(response, GatewayDiscovery)
                self.mode = "gateway"
                return self.discovery
        response = yield Call("GET", self.base_url + NATIVE_DISCOVERY_PATH)
        self.discovery = parse(response, AppDiscovery)
        self.mode = "native"
        return self.discovery

    def register(
        self,
        providers: Mapping[str, Sequence[str]] | Sequence[ProviderScopes],
        *,
        developer: Developer | Mapping[str, str],
        purpose: str | None = None,
        redirect_uris: Sequence[str] | None = (LOOPBACK_REDIRECT_URI,),
    ) -> Operation[RegisterResponse]:
        """Register the agent (ATH §4.1); ``providers`` maps provider_id → scopes.

        The client credentials are stored on success. ``redirect_uris`` defaults to
        ``http://127.0.0.1/callback`` (any loopback port matches), which
        :func:`authorize_interactive` uses. A second registration raises
        ``AGENT_ALREADY_REGISTERED``.
        """
        if self.mode != "gateway":
            yield from self._ensure_mode()
        if isinstance(providers, Mapping):
            requested = [
                ProviderScopes(provider_id=p, scopes=list(s)) for p, s in providers.items()
            ]
        else:
            requested = list(providers)
        body = RegisterRequest(
            agent_id=self.agent_id,
            agent_attestation=self.attest(self.base_url),
            developer=developer
            if isinstance(developer, Developer)
            else Developer.model_validate(developer),
            requested_providers=requested,
            purpose=purpose,
            redirect_uris=list(redirect_uris) if redirect_uris is not None else None,
        )
        response = yield Call("POST", self._endpoint("register"), json=body.dump())
        result = parse(response, RegisterResponse)
        self.store.save_client(
            self.base_url,
            StoredClient(
                agent_id=self.agent_id,
                client_id=result.client_id,
                client_secret=result.client_secret,
                agent_status=result.agent_status,
            ),
        )
        return result

    def status(self, client_id: str | None = None) -> Operation[AgentStatusResponse]:
        """The registration's status as the server sees it (ATH §4.2).

        Authenticated with the stored client secret when there is one, else with an attestation.
        """
        stored = self.store.get_client(self.base_url, self.agent_id)
        target = client_id or (stored.client_id if stored else None)
        if target is None:
            raise ATHClientError(
                NOT_REGISTERED, f"no client_id known for {self.base_url}; register first"
            )
        call = Call("GET", f"{self.base_url}{AGENTS_PATH}{quote(target, safe='')}")
        if stored is not None and stored.client_id == target:
            call.auth = (stored.client_id, stored.client_secret)
        else:
            call.headers[ATTESTATION_HEADER] = self.attest(self.base_url)
        result = parse((yield call), AgentStatusResponse)
        if stored is not None and stored.client_id == target:
            stored.agent_status = result.agent_status
            self.store.save_client(self.base_url, stored)
        return result

    def authorize(
        self,
        provider_id: str | None,
        scopes: Sequence[str],
        *,
        user_redirect_uri: str | None = None,
        state: str | None = None,
        resource: str | None = None,
    ) -> Operation[PendingAuthorization]:
        """Start the user's consent (ATH §4.3); open ``.authorization_url`` in their browser.

        ``state`` is generated (256 bits) unless given; compare it with the redirect's. In native
        mode ``provider_id`` may be ``None``: the service's ``app_id`` is used.
        """
        mode = yield from self._ensure_mode()
        provider = provider_id or self._default_provider(mode)
        creds = self.client_credentials()
        sent_state = state or new_state()
        body = AuthorizeRequest(
            client_id=creds.client_id,
            agent_attestation=self.attest(self.base_url),
            provider_id=provider,
            scopes=list(scopes),
            state=sent_state,
            user_redirect_uri=user_redirect_uri,
            resource=resource,
        )
        response = yield Call("POST", self._endpoint("authorize"), json=body.dump())
        answer = parse(response, AuthorizeResponse)
        return PendingAuthorization(
            authorization_url=answer.authorization_url,
            ath_session_id=answer.ath_session_id,
            state=sent_state,
            provider_id=provider,
            user_redirect_uri=user_redirect_uri,
        )

    def exchange_token(self, code: str | None, ath_session_id: str) -> Operation[TokenResponse]:
        """Exchange the ATH code from the redirect (or the completion page) for an access token
        (ATH §4.5), which is stored.

        ``code`` may be ``None`` for a session authorized without a redirect URI, once the user
        is done: the server then accepts the session id with the client secret and a fresh
        attestation (ATH §4.4).
        """
        if self.mode == "native" or self.mode is None:
            yield from self._ensure_mode()
        creds = self.client_credentials()
        url = self._endpoint("token")
        body = TokenRequest(
            grant_type="authorization_code",
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            # ATH §4.5: aud is the token endpoint URL itself.
            agent_attestation=self.attest(url),
            code=code,
            ath_session_id=ath_session_id,
        )
        started = time.time()
        result = parse((yield Call("POST", url, json=body.dump())), TokenResponse)
        self.store.save_token(
            self.base_url,
            StoredToken(
                agent_id=self.agent_id,
                provider_id=result.provider_id,
                access_token=result.access_token,
                effective_scopes=list(result.effective_scopes),
                # Counted from before the request left, so we never think it lives longer.
                expires_at=started + result.expires_in,
            ),
        )
        return result

    def revoke(
        self, provider_id: str | None = None, *, token: str | None = None
    ) -> Operation[None]:
        """Revoke the stored token for ``provider_id`` (or the given ``token``), ATH §4.7."""
        if provider_id is None and token is None:
            mode = yield from self._ensure_mode()
            if mode == "gateway":
                # A gateway serves several providers: the only one holding a token, or say so.
                stored_for = self.store.tokens(self.base_url, self.agent_id)
                providers = sorted({t.provider_id for _, t in stored_for})
                if len(providers) != 1:
                    raise ATHClientError(
                        PROVIDER_REQUIRED if providers else NOT_AUTHORIZED,
                        f"tokens are stored for {', '.join(providers)}: name the provider"
                        if providers
                        else f"no token stored at {self.base_url}",
                    )
                provider_id = providers[0]
            else:
                provider_id = self._default_provider(mode)
        creds = self.client_credentials()
        stored = (
            self.store.get_token(self.base_url, self.agent_id, provider_id)
            if provider_id is not None
            else None
        )
        value = token or (stored.access_token if stored else None)
        if value is None:
            raise ATHClientError(
                NOT_AUTHORIZED, f"no token stored for provider {provider_id!r} at {self.base_url}"
            )
        body = RevokeRequest(
            token=value, client_id=creds.client_id, client_secret=creds.client_secret
        )
        response = yield Call("POST", self.base_url + REVOKE_PATH, json=body.dump())
        if response.status_code >= 400:
            raise error_from_response(response)
        for _, held in self.store.tokens(self.base_url, self.agent_id):
            if held.access_token == value:
                self.store.delete_token(self.base_url, self.agent_id, held.provider_id)
        return None

    def proxy(
        self, provider_id: str, method: str, path: str, **options: Unpack[RequestOptions]
    ) -> Operation[httpx.Response]:
        """Call a provider's API through the gateway (ATH §4.6); the raw response comes back.

        A refusal by the gateway (an ATH §7 body) raises :class:`ATHClientError`; the
        provider's own answers, errors included, are returned unchanged.
        """
        return self.api_call("gateway", provider_id, method, path, **options)

    def request(
        self,
        method: str,
        path: str,
        *,
        provider_id: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Operation[httpx.Response]:
        """Call a native service's API at ``{api_base}{path}`` with the stored token."""
        return self.api_call("native", provider_id, method, path, **options)

    def api_call(
        self,
        expected_mode: Mode,
        provider_id: str | None,
        method: str,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        raise_for_ath_error: bool = True,
    ) -> Operation[httpx.Response]:
        """A protected API call: through the gateway proxy (ATH §4.6) or to a native API."""
        mode = yield from self._ensure_mode()
        if mode != expected_mode:
            other = "request()" if mode == "native" else "proxy()"
            raise ATHClientError(
                WRONG_MODE, f"{self.base_url} is in {mode} mode; use {other} there"
            )
        provider = provider_id or self._default_provider(mode)
        token = self.usable_token(provider)
        if mode == "gateway":
            url = f"{self.base_url}{PROXY_PREFIX}{quote(provider, safe='')}/{path.lstrip('/')}"
        else:
            assert isinstance(self.discovery, AppDiscovery)
            url = self.discovery.api_base.rstrip("/") + "/" + path.lstrip("/")
        sent_headers = dict(headers or {})
        sent_headers["Authorization"] = f"Bearer {token.access_token}"
        sent_headers[AGENT_ID_HEADER] = self.agent_id
        response = yield Call(
            method.upper(), url, json=json, content=content, params=params, headers=sent_headers
        )
        if is_ath_error(response):
            error = error_from_response(response)
            if error.code in (TOKEN_EXPIRED, TOKEN_REVOKED):
                # Remember it: `ath token` then says the token is dead and what to do.
                self.store.save_token(
                    self.base_url, token.model_copy(update={"refused": error.code})
                )
            if raise_for_ath_error:
                raise error
        return response

    def _default_provider(self, mode: Mode) -> str:
        if mode == "native" and isinstance(self.discovery, AppDiscovery):
            return self.discovery.app_id
        raise ValueError("a gateway serves several providers; name the provider_id")
