"""``/ath/check``: forward-auth, the ATH §4.6 decision for a proxy that forwards by itself.

An existing proxy (nginx ``auth_request``, Envoy ``ext_authz`` HTTP service, Traefik
``forwardAuth``) asks this endpoint about each agent call before forwarding it. It answers with
the same access check as the built-in proxy (token, agent, provider, scope → route map, rate
limit, audit) and never calls the upstream nor reads a body.

The original request, which the agent addressed to ``/ath/proxy/{provider_id}/{path}`` as it
would through the built-in proxy, is read from:

* its URI: ``X-Original-URI`` (nginx), else the path after ``/ath/check`` plus the query (Envoy,
  with ``path_prefix = "/ath/check"``);
* its method: ``X-Original-Method`` (nginx's subrequests are always GET), else this request's
  own method (Envoy keeps it);
* its ``Authorization: Bearer`` and ``X-ATH-Agent-ID`` headers, passed through.

Only callers that send ``X-ATH-Check-Secret`` with the configured ``[forward_auth]`` secret are
answered (compared in constant time); anyone else gets 401 ``INVALID_CLIENT``, audited.

Allowed: ``200``, empty body, with the user's provider credentials (refreshed when expired) in
``X-ATH-Upstream-Authorization`` and ``Authorization`` (the header Envoy copies with
``allowed_upstream_headers``) — for the proxy to put on the forwarded request, never for the
agent. Refused: the ATH status and ``{"code","message","details"}`` body the built-in proxy
would answer, the same JSON (ASCII, one line) in ``X-ATH-Error`` for proxies that drop a
subrequest's body (nginx), plus ``WWW-Authenticate`` on 401 and ``Retry-After`` on 429.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import TYPE_CHECKING

from athkit.gateway._nginx import CREDENTIALS_HEADER, ERROR_HEADER, SECRET_HEADER
from athkit.gateway._proxy import NO_ROUTES, PROXY_PREFIX, Receive, Scope, Send
from athkit.protocol import ATHError, ErrorCode
from athkit.server import TokenInfo

if TYPE_CHECKING:
    from athkit.gateway._proxy import ProxyApp

_log = logging.getLogger("athkit.gateway.check")

CHECK_PREFIX = "/ath/check"
_SECRET = SECRET_HEADER.lower().encode()
_ERROR_HEADER = ERROR_HEADER.lower().encode()
_CREDENTIALS = CREDENTIALS_HEADER.lower().encode()
_MAX_ERROR_HEADER = 2500  # well inside nginx's proxy_buffer_size (8k) for the check's answer
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
            await _send_refusal(send, exc)
            self.proxy.metrics.proxy_done(
                provider_id, exc.code.value, time.perf_counter() - started
            )
            return
        creds = await self._credentials(info, provider_id, method, path)
        if isinstance(creds, ATHError):
            await _send_refusal(send, creds)
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
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", b"0"),
                    (b"cache-control", b"no-store"),
                    (_CREDENTIALS, creds.encode("latin-1")),
                    (b"authorization", creds.encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
        self.proxy.metrics.proxy_done(provider_id, "allowed", time.perf_counter() - started)

    async def _decide(self, scope: Scope) -> tuple[str, TokenInfo, str, str, str]:
        """Parse the original request and run the access check; raise ``ATHError`` to deny."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        secret = original_uri = original_method = token = agent = None
        for name, value in headers:
            lower = name.lower()
            if lower == _SECRET:
                secret = value
            elif lower == b"x-original-uri":
                original_uri = value
            elif lower == b"x-original-method":
                original_method = value
            elif lower == b"authorization":
                scheme, _, credential = value.partition(b" ")
                if scheme.lower() == b"bearer" and credential.strip():
                    token = credential.strip().decode("latin-1")
            elif lower == b"x-ath-agent-id":
                agent = value.decode("latin-1").strip()
        if self._secret is None or secret is None or not hmac.compare_digest(secret, self._secret):
            await self._audit_denied(
                None, "-", "", "", "wrong or missing check secret", "INVALID_CLIENT"
            )
            raise ATHError(
                ErrorCode.INVALID_CLIENT,
                f"the check endpoint answers only the proxy configured with {SECRET_HEADER}",
            )
        if original_uri is None:
            raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
            original_uri = raw[len(CHECK_PREFIX) :].split(b"?", 1)[0]
            query: bytes = scope.get("query_string", b"")
            if query:
                original_uri += b"?" + query
        method = (original_method or scope["method"].encode()).decode("latin-1").upper()
        raw_path = original_uri.split(b"?", 1)[0]
        if not raw_path.startswith(_PROXY_PREFIX):
            raise ATHError(
                ErrorCode.INVALID_REQUEST,
                f"agent calls go to {PROXY_PREFIX}{{provider_id}}/{{path}}",
                details={"reason": "not_a_proxy_path"},
                status=404,
            )
        provider_raw, slash, sub = raw_path[len(_PROXY_PREFIX) :].partition(b"/")
        provider_id = provider_raw.decode("latin-1")
        path = "/" + sub.decode("latin-1") if slash else "/"
        info, scope_used = await self._access(token, agent, provider_id, method, path)
        return provider_id, info, scope_used, method, path

    async def _access(
        self, token: str | None, agent: str | None, provider_id: str, method: str, path: str
    ) -> tuple[TokenInfo, str]:
        """ATH §4.6 steps 1-4 and the rate limit — the proxy's own access check — and the
        scope that allows the call."""
        proxy = self.proxy
        upstream = proxy.upstreams.get(provider_id)
        granted = await proxy.access.check(
            method=method,
            path=path,
            token=token,
            agent_id=agent,
            provider_id=provider_id,
            route_map=upstream.routes if upstream is not None else NO_ROUTES,
        )
        if upstream is None:
            await self._audit_denied(
                granted.token,
                provider_id,
                method,
                path,
                "provider not configured",
                "PROVIDER_NOT_APPROVED",
            )
            raise ATHError(
                ErrorCode.PROVIDER_NOT_APPROVED,
                f"provider {provider_id!r} is not configured on this gateway",
            )
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

    async def _audit_denied(
        self,
        info: TokenInfo | None,
        provider_id: str,
        method: str,
        path: str,
        reason: str,
        code: str,
    ) -> None:
        try:
            await self.proxy.audit.put(
                "access_denied",
                agent_id=info.agent_id if info else None,
                client_id=info.client_id if info else None,
                user_id=info.user_id if info else None,
                provider_id=provider_id if provider_id != "-" else None,
                reason=reason,
                code=code,
                details={"method": method, "path": path, "via": "forward_auth"},
            )
        except Exception:
            _log.exception("could not audit a forward-auth refusal")


def error_header(exc: ATHError) -> bytes:
    """The refusal as one ASCII line for ``X-ATH-Error`` (details dropped if too long)."""
    body = exc.to_dict()
    line = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
    if len(line) > _MAX_ERROR_HEADER:
        short = {"code": body["code"], "message": str(body["message"])[:500], "details": {}}
        line = json.dumps(short, separators=(",", ":"), ensure_ascii=True)
    return line.encode("ascii")


async def _send_refusal(send: Send, exc: ATHError) -> None:
    body = json.dumps(exc.to_dict(), separators=(",", ":")).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (_ERROR_HEADER, error_header(exc)),
    ]
    headers.extend(
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()
    )
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
