"""``/ath/check`` of the gateway: forward-auth, the ATH §4.6 decision for a proxy that forwards.

An existing proxy (nginx ``auth_request``, Envoy or agentgateway ``ext_authz`` HTTP service)
asks this endpoint about each agent call before forwarding it. It answers with
the proxy's own access check (token, agent, provider, scope → route map, rate limit, audit) and
never calls the upstream nor reads a body. How the original call is read, the shared secret and
the refusals: ``athkit.server._forward_auth``. The agent addressed the call to
``/ath/proxy/{provider_id}/{path}``, as through the built-in proxy.

Allowed: ``200``, empty body, with the user's provider credentials (refreshed when expired) in
``X-ATH-Upstream-Authorization`` and ``Authorization`` (the header Envoy copies with
``allowed_upstream_headers``), for the proxy to put on the forwarded request, never for the
agent; audited as ``proxy_request`` (``details.via = "forward_auth"``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from athkit.protocol import (
    CHECK_PATH,
    PROXY_PREFIX,
    UPSTREAM_AUTHORIZATION_HEADER,
    ATHError,
    ErrorCode,
)
from athkit.server import TokenInfo
from athkit.server._forward_auth import (
    read_original_call,
    send_allowed,
    send_refusal,
)

if TYPE_CHECKING:
    from athkit.gateway._proxy import ProxyApp

CHECK_PREFIX = CHECK_PATH
CREDENTIALS_HEADER = UPSTREAM_AUTHORIZATION_HEADER
_CREDENTIALS = CREDENTIALS_HEADER.lower().encode()
_PROXY_PREFIX = PROXY_PREFIX.encode()


class CheckApp:
    """The raw ASGI app behind ``/ath/check`` (one per gateway; shares the proxy's state)."""

    def __init__(self, proxy: ProxyApp, secret: str | None) -> None:
        self.proxy = proxy
        self._secret = secret.encode() if secret else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        provider_id = "-"
        try:
            provider_id, info, scope_used, method, path = await self._decide(scope)
        except ATHError as exc:
            await send_refusal(send, exc)
            self.proxy.metrics.proxy_done(
                provider_id, exc.code.value, time.perf_counter() - started
            )
            return
        creds = await self._credentials(info, provider_id, method, path)
        if isinstance(creds, ATHError):
            await send_refusal(send, creds)
            self.proxy.metrics.proxy_done(
                provider_id, creds.code.value, time.perf_counter() - started
            )
            return
        await self.proxy.audit.put(
            "proxy_request",
            agent_id=info.agent_id,
            client_id=info.client_id,
            user_id=info.user_id,
            provider_id=provider_id,
            effective_scopes=[scope_used],
            details={"method": method, "path": path, "via": "forward_auth"},
        )
        credentials = creds.encode("latin-1")
        await send_allowed(send, [(_CREDENTIALS, credentials), (b"authorization", credentials)])
        self.proxy.metrics.proxy_done(provider_id, "allowed", time.perf_counter() - started)

    async def _decide(self, scope: Scope) -> tuple[str, TokenInfo, str, str, str]:
        """Read the original call and run the access check; raise ``ATHError`` to deny."""
        try:
            call = read_original_call(scope, self._secret)
        except ATHError as exc:
            raise await self._denied(exc, None, "-", "", "") from None
        if not call.raw_path.startswith(_PROXY_PREFIX):
            refusal = ATHError(
                ErrorCode.INVALID_REQUEST,
                f"agent calls go to {PROXY_PREFIX}{{provider_id}}/{{path}}",
                details={"reason": "not_a_proxy_path"},
                status=404,
            )
            raise await self._denied(
                refusal, None, "-", call.method, call.raw_path.decode("latin-1")
            )
        provider_raw, slash, sub = call.raw_path[len(_PROXY_PREFIX) :].partition(b"/")
        provider_id = provider_raw.decode("latin-1")
        path = "/" + sub.decode("latin-1") if slash else "/"
        info, scope_used = await self._access(
            call.token, call.agent_id, provider_id, call.method, path
        )
        return provider_id, info, scope_used, call.method, path

    async def _access(
        self, token: str | None, agent: str | None, provider_id: str, method: str, path: str
    ) -> tuple[TokenInfo, str]:
        """ATH §4.6 steps 1-4 and the rate limit — the proxy's own access check — and the
        scope that allows the call."""
        proxy = self.proxy
        upstream = proxy.upstreams.get(provider_id)
        granted = await proxy.checked(upstream, provider_id, method, path, token, agent)
        if upstream is None:
            refusal = ATHError(
                ErrorCode.PROVIDER_NOT_APPROVED,
                f"provider {provider_id!r} is not configured on this gateway",
            )
            raise await self._denied(refusal, granted.token, provider_id, method, path)
        proxy.audit.self_check()
        return granted.token, granted.scope

    async def _credentials(
        self, info: TokenInfo, provider_id: str, method: str, path: str
    ) -> str | ATHError:
        """``"<type> <token>"`` for the upstream's Authorization, or the refusal."""
        try:
            creds = await self.proxy.engine.provider_credentials(info)  # audits its refusals
        except ATHError as exc:
            return exc
        token_type = "Bearer" if creds.token_type.lower() == "bearer" else creds.token_type
        return f"{token_type} {creds.access_token}"

    async def _denied(
        self, refusal: ATHError, info: TokenInfo | None, provider_id: str, method: str, path: str
    ) -> ATHError:
        """The gateway's own refusal, stored before it is answered (``record_refusal``)."""
        return await self.proxy.engine.record_refusal(
            refusal,
            agent_id=info.agent_id if info else None,
            client_id=info.client_id if info else None,
            user_id=info.user_id if info else None,
            provider_id=provider_id if provider_id != "-" else None,
            details={"method": method, "path": path, "via": "forward_auth"},
        )
