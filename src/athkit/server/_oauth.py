"""The OAuth 2.0 client side of the implementer (ATH §4.3, §4.4): the bridge to a provider.

Builds the provider authorization URL (PKCE S256, server-generated ``state``, RFC 8707
``resource``, the signed ATH agent context), exchanges the code server-side with a form-encoded
request (RFC 6749 §4.1.3), refreshes provider tokens (RFC 6749 §6) and learns the user's id from
the userinfo endpoint or the ``sub`` of the ``id_token``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from athkit.protocol import (
    ATHError,
    ErrorCode,
    JSONLimits,
    JSONRejected,
    b64url_decode,
    loads_bounded,
)
from athkit.server._settings import ProviderSettings

_MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class ProviderTokenSet:
    """What a provider's token endpoint answered."""

    access_token: str
    token_type: str = "Bearer"
    refresh_token: str | None = None
    expires_in: int | None = None
    scope: tuple[str, ...] | None = None
    id_token: str | None = None


class OAuthBridge(Protocol):
    """The provider-facing OAuth operations the engine needs."""

    def authorization_url(
        self,
        provider: ProviderSettings,
        *,
        state: str,
        code_challenge: str,
        redirect_uri: str,
        scopes: Sequence[str],
        resource: str | None,
        ath_context: str | None,
    ) -> str:
        """The URL the user's browser is sent to."""
        ...

    async def exchange_code(
        self,
        provider: ProviderSettings,
        *,
        code: str,
        code_verifier: str,
        redirect_uri: str,
        resource: str | None,
    ) -> ProviderTokenSet:
        """Trade an authorization code for tokens; ``OAUTH_ERROR`` if the provider refuses."""
        ...

    async def refresh(self, provider: ProviderSettings, refresh_token: str) -> ProviderTokenSet:
        """Use a refresh token; ``OAUTH_ERROR`` (details ``invalid_grant``) if it is dead."""
        ...

    async def user_id(self, provider: ProviderSettings, tokens: ProviderTokenSet) -> str:
        """The provider's id of the user who consented."""
        ...


def _oauth_error(message: str, **details: Any) -> ATHError:
    return ATHError(ErrorCode.OAUTH_ERROR, message, details=details)


def _user_id(value: str) -> str:
    if len(value) > 256:
        raise _oauth_error("the provider's user id is longer than 256 characters")
    return value


def add_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to its query string (existing ones kept)."""
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


class HttpOAuthBridge:
    """:class:`OAuthBridge` over httpx, with timeouts and a response size cap."""

    def __init__(self, client: httpx.AsyncClient | None = None, *, timeout: float = 10.0) -> None:
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=5.0), follow_redirects=False
        )
        self._owns_client = client is None

    async def aclose(self) -> None:
        """Close the HTTP client if this bridge created it."""
        if self._owns_client:
            await self._client.aclose()

    def authorization_url(
        self,
        provider: ProviderSettings,
        *,
        state: str,
        code_challenge: str,
        redirect_uri: str,
        scopes: Sequence[str],
        resource: str | None,
        ath_context: str | None,
    ) -> str:
        """RFC 6749 §4.1.1 with PKCE S256 (RFC 7636 §4.3) and RFC 8707 ``resource``."""
        params = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            # ATH §4.3 / §6: PKCE S256 on every authorization request.
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        if resource:
            params["resource"] = resource
        if ath_context:
            params["ath_context"] = ath_context
        return add_query(provider.authorization_endpoint, params)

    async def exchange_code(
        self,
        provider: ProviderSettings,
        *,
        code: str,
        code_verifier: str,
        redirect_uri: str,
        resource: str | None,
    ) -> ProviderTokenSet:
        """RFC 6749 §4.1.3: form-encoded, client authenticated with HTTP Basic."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        if resource:
            form["resource"] = resource
        return await self._token_request(provider, form)

    async def refresh(self, provider: ProviderSettings, refresh_token: str) -> ProviderTokenSet:
        """RFC 6749 §6."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if provider.resource:
            form["resource"] = provider.resource
        return await self._token_request(provider, form)

    async def user_id(self, provider: ProviderSettings, tokens: ProviderTokenSet) -> str:
        """From the userinfo endpoint when configured, else from the id_token's ``sub``.

        The id_token came straight from the provider's token endpoint over the connection we
        opened (OpenID Connect Core §3.1.3.7 lets a code-flow client rely on that transport).
        """
        if provider.userinfo_endpoint:
            try:
                response = await self._client.get(
                    provider.userinfo_endpoint,
                    headers={
                        "Authorization": f"Bearer {tokens.access_token}",
                        "Accept": "application/json",
                    },
                )
            except httpx.HTTPError as exc:
                raise _oauth_error(
                    "the provider's userinfo endpoint is unreachable", error=type(exc).__name__
                ) from None
            data = self._json(response, "userinfo")
            if response.status_code != 200:
                raise _oauth_error(
                    "the provider's userinfo endpoint refused the token",
                    status=response.status_code,
                )
            value = data.get(provider.user_id_field)
            if isinstance(value, int | str) and not isinstance(value, bool) and str(value):
                return _user_id(str(value))
            raise _oauth_error(f"userinfo has no {provider.user_id_field!r} field")
        if tokens.id_token:
            try:
                payload = loads_bounded(b64url_decode(tokens.id_token.split(".")[1]))
            except (ValueError, IndexError):
                raise _oauth_error("the provider's id_token is malformed") from None
            sub = payload.get("sub") if isinstance(payload, dict) else None
            if isinstance(sub, str) and sub:
                return _user_id(sub)
        raise _oauth_error("cannot learn the user's id: no userinfo endpoint and no id_token sub")

    async def _token_request(
        self, provider: ProviderSettings, form: dict[str, str]
    ) -> ProviderTokenSet:
        try:
            response = await self._client.post(
                provider.token_endpoint,
                data=form,  # RFC 6749 §4.1.3: application/x-www-form-urlencoded
                auth=(provider.client_id, provider.client_secret.get_secret_value()),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise _oauth_error(
                "the provider's token endpoint is unreachable", error=type(exc).__name__
            ) from None
        data = self._json(response, "token")
        if response.status_code != 200:
            error = data.get("error")
            raise _oauth_error(
                "the provider refused the token request",
                provider_error=error if isinstance(error, str) else "unknown",
                status=response.status_code,
            )
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise _oauth_error("the provider's token response has no access_token")
        scope = data.get("scope")
        expires = data.get("expires_in")
        refresh = data.get("refresh_token")
        id_token = data.get("id_token")
        token_type = data.get("token_type")
        if not isinstance(token_type, str) or not 0 < len(token_type) <= 32:
            token_type = "Bearer"
        return ProviderTokenSet(
            access_token=access,
            token_type=token_type,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_in=int(expires) if isinstance(expires, int | float) and expires > 0 else None,
            scope=tuple(scope.split()) if isinstance(scope, str) else None,
            id_token=id_token if isinstance(id_token, str) else None,
        )

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        if len(response.content) > _MAX_RESPONSE_BYTES:
            raise _oauth_error(f"the provider's {what} response is too large")
        try:
            data = loads_bounded(response.content, JSONLimits(max_bytes=_MAX_RESPONSE_BYTES))
        except JSONRejected:
            raise _oauth_error(
                f"the provider's {what} response is not JSON", status=response.status_code
            ) from None
        if not isinstance(data, dict):
            raise _oauth_error(f"the provider's {what} response is not a JSON object")
        return data
