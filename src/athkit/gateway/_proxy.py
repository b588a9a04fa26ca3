"""``ANY /ath/proxy/{provider_id}/{path}`` (ATH §4.6): the scope-checked, streaming proxy.

A raw ASGI app, because it runs on every agent API call. Checks, in order:

1. the bearer token is a valid ATH token (``TOKEN_INVALID``, ``_EXPIRED``, ``_REVOKED``);
2. ``X-ATH-Agent-ID`` equals the token's agent (``AGENT_IDENTITY_MISMATCH``);
3. ``{provider_id}`` equals the token's provider (``PROVIDER_MISMATCH``);
4. a scope of the token allows the method and path through the provider's scope → route map
   (``SCOPE_NOT_APPROVED``, audited ``scope_violation``);
5. the agent is within its rate limit (``RATE_LIMITED`` with ``Retry-After``);
6. the user's stored provider token, refreshed when expired, replaces the agent's credentials;
7. method, path, raw query string and body go upstream — hop-by-hop headers (RFC 9110 §7.6.1
   and those named in ``Connection``) and the agent's ``Authorization``, ``Cookie`` and
   ``X-ATH-*`` headers stripped — and the provider's status, headers (minus hop-by-hop) and body
   come back unchanged, streamed both ways.

Steps 1–5 are the one access check of ATH §4.6 (``athkit.server.AccessCheck``), shared with the
native guard and the forward-auth endpoint: one indexed token lookup, never cached, so a
revocation bites on the next call. Upstream unreachable answers 502 ``UPSTREAM_UNAVAILABLE``; no
answer in time 504 ``UPSTREAM_TIMEOUT``. A provider 401 makes the gateway refresh the provider
token and, for a request without a body, retry once; a 401 after a refresh answers
``OAUTH_ERROR`` and marks the grant as needing the user again. The provider token never
reaches the agent: it is only ever
put in the upstream request, and a response that echoes it is withheld.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

from starlette.types import Receive, Scope, Send

from athkit.gateway._auditqueue import AuditQueue
from athkit.gateway._http1 import Http1Response, UpstreamError, UpstreamTimeout
from athkit.gateway._mcp import MAX_LISTING_BYTES, McpCall, McpGate, send_jsonrpc_error
from athkit.gateway._metrics import GatewayMetrics
from athkit.gateway._upstream import Upstream
from athkit.protocol import (
    AGENT_ID_HEADER,
    PROXY_PREFIX,
    RESERVED_HEADER_PREFIX,
    ATHError,
    ErrorCode,
    ScopeRouteMap,
)
from athkit.server import (
    AccessCheck,
    AccessGranted,
    ATHEngine,
    ProviderCredentials,
    TokenInfo,
    bearer_token,
    error_parts,
)

_log = logging.getLogger("athkit.gateway.proxy")

_PREFIX_BYTES = PROXY_PREFIX.encode()

# RFC 9110 §7.6.1 (plus the older proxy-* and trailer names RFC 2616 listed).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Never forwarded from the agent: its credentials, and what the gateway sets itself.
_AGENT_ONLY = frozenset({b"authorization", b"cookie", b"host", b"expect"})
_AGENT_ID = AGENT_ID_HEADER.lower().encode()
_RESERVED = RESERVED_HEADER_PREFIX.lower().encode()  # the protocol's headers never go upstream
_BUFFER_LIMIT = 256 * 1024
NO_ROUTES = ScopeRouteMap.from_config({})  # a provider this gateway does not serve


class ProxyApp:
    """The ASGI app behind ``/ath/proxy/``."""

    def __init__(
        self,
        engine: ATHEngine,
        upstreams: dict[str, Upstream],
        access: AccessCheck,
        metrics: GatewayMetrics,
        audit: AuditQueue,
    ) -> None:
        self.engine = engine
        self.upstreams = upstreams
        self.access = access
        self.metrics = metrics
        self.audit = audit

    async def _credentials_for(
        self, info: TokenInfo, *, force_refresh: bool = False
    ) -> ProviderCredentials:
        """The provider token behind ``info`` (the engine's vault caches it briefly)."""
        return await self.engine.provider_credentials(info, force_refresh=force_refresh)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        attempt = _Attempt()
        try:
            outcome = await self._handle(scope, receive, send, attempt)
        except ATHError as exc:
            outcome = exc.code.value
            if not attempt.audited:
                exc = await self._audit_rejection(attempt, exc)
            if attempt.mcp is not None:
                await _send_mcp_error(send, exc, attempt, receive)
            else:
                await _send_error(send, exc)
        self.metrics.proxy_done(attempt.provider_id, outcome, time.perf_counter() - started)

    async def _audit_rejection(self, attempt: _Attempt, exc: ATHError) -> ATHError:
        # ATH §6 / DESIGN: every rejection is an audit event. The engine audits its own
        # (token checks, rate limit, provider grant); these are the gateway's (upstream, ...).
        # A denial is a security event: stored before the answer (never queued behind it), so
        # a crash cannot lose the record of a refusal the agent saw. If it cannot be stored,
        # the answer is the audit store's 503 instead.
        info = attempt.info
        return await self.engine.record_refusal(
            exc,
            reason=exc.message,
            agent_id=info.agent_id if info else None,
            client_id=info.client_id if info else None,
            user_id=info.user_id if info else None,
            provider_id=attempt.provider_id if attempt.provider_id != "-" else None,
            requested_scopes=list(info.scopes) if info else [],
            details={"method": attempt.method, "path": attempt.path},
        )

    async def checked(
        self,
        upstream: Upstream | None,
        provider_id: str,
        method: str,
        path: str,
        token: str | None,
        agent_id: str | None,
        *,
        per_tool: bool = False,
    ) -> AccessGranted:
        """The one access check of ATH §4.6 (steps 1-4 and the rate limit, audited there)
        against the provider's scope → route map; an unknown provider has no routes. An MCP
        endpoint's messages (``per_tool``) are checked per tool once the token is good."""
        routes = upstream.routes if upstream is not None else NO_ROUTES
        return await self.access.check(
            method=method,
            path=path,
            token=token,
            agent_id=agent_id,
            provider_id=provider_id,
            route_map=None if per_tool else routes,
        )

    async def _handle(self, scope: Scope, receive: Receive, send: Send, attempt: _Attempt) -> str:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        raw_path = raw_path.split(b"?", 1)[0]
        rest = raw_path[len(_PREFIX_BYTES) :]
        provider_raw, slash, sub = rest.partition(b"/")
        provider_id = provider_raw.decode("latin-1")
        path = "/" + sub.decode("latin-1") if slash else "/"
        method: str = scope["method"]
        attempt.provider_id, attempt.method, attempt.path = provider_id, method, path
        known = self.upstreams.get(provider_id)
        if known is not None and known.mcp is not None and known.mcp.covers(path):
            attempt.mcp = known.mcp  # refusals answer as JSON-RPC errors from here on

        token, agent_header, forwarded, has_body, length = _split_headers(scope["headers"])
        upstream = self.upstreams.get(provider_id)
        attempt.audited = True
        granted = await self.checked(
            upstream, provider_id, method, path, token, agent_header, per_tool=bool(attempt.mcp)
        )
        info, scope_used = granted.token, granted.scope
        attempt.info, attempt.audited = info, False
        if upstream is None or upstream.pool is None:
            raise ATHError(
                ErrorCode.PROVIDER_NOT_APPROVED,
                f"provider {provider_id!r} is not configured on this gateway",
            )
        call: McpCall | None = None
        if attempt.mcp is not None:
            # ATH §4.6 step 4 for an MCP endpoint: the tool named in the message, not the path.
            call, mcp_scope = await self._mcp_check(attempt.mcp, receive, info, attempt)
            scope_used = mcp_scope or ""
        self.audit.self_check()

        attempt.audited = True  # the engine audits provider-grant failures
        creds = await self._credentials_for(info)
        attempt.audited = False
        # The path and query go upstream byte for byte as the agent sent them.
        query: bytes = scope.get("query_string", b"")
        target = b"/" + sub if slash else b"/"
        if query:
            target += b"?" + query
        body: bytes | AsyncIterator[bytes] | None = _body_stream(receive) if has_body else None
        if call is not None:
            body, length = call.body, None
            # The listing is read whole and rewritten: ask for it uncompressed.
            forwarded = [(n, v) for n, v in forwarded if n.lower() != b"accept-encoding"]
        request = _Request(method, target, forwarded, body, length)
        response = await self._forward(upstream, request, creds)
        if response.status == 401:
            response = await self._after_401(upstream, request, info, response, attempt)
        try:
            if call is not None and call.is_listing and response.status == 200:
                assert attempt.mcp is not None
                await _relay_listing(response, send, creds.access_token, attempt.mcp, call, info)
            else:
                await _relay(response, send, creds.access_token)
        finally:
            response.release()
            await self.audit.put(
                "proxy_request",
                agent_id=info.agent_id,
                client_id=info.client_id,
                user_id=info.user_id,
                provider_id=provider_id,
                effective_scopes=[scope_used] if scope_used else [],
                details={
                    "method": method,
                    "path": path,
                    "status": response.status,
                    **(call.audit_details() if call is not None else {}),
                },
            )
        return _status_class(response.status)

    async def _mcp_check(
        self, gate: McpGate, receive: Receive, info: TokenInfo, attempt: _Attempt
    ) -> tuple[McpCall | None, str | None]:
        """Step 4 for an MCP endpoint: the tool (prompt, resource) against the token's scopes."""
        if attempt.method != "POST":
            return None, None  # the event stream (GET) or the end of a session (DELETE)
        try:
            call = await gate.read(receive)
        except ATHError:
            attempt.mcp_call = McpCall(b"")  # the body is consumed: no second read for its id
            raise
        attempt.mcp_call = call
        refusal = gate.check(call, info.scopes)
        if refusal is not None:
            assert call.target is not None
            attempt.audited = True
            await self.engine.audit_token(
                "scope_violation",
                info,
                requested_scopes=refusal.details["required_scopes"],
                effective_scopes=list(info.scopes),
                denied_scopes=refusal.details["required_scopes"],
                reason=f"{call.method} {call.target} is allowed by no scope of the token",
                code=ErrorCode.SCOPE_NOT_APPROVED.value,
                details={"method": "POST", "path": attempt.path, **call.audit_details()},
            )
            raise refusal
        return call, call.scope

    async def _forward(
        self, upstream: Upstream, request: _Request, creds: ProviderCredentials
    ) -> Http1Response:
        token_type = "Bearer" if creds.token_type.lower() == "bearer" else creds.token_type
        authorization = f"{token_type} {creds.access_token}".encode("latin-1", "replace")
        if b"\r" in authorization or b"\n" in authorization:
            raise ATHError(
                ErrorCode.OAUTH_ERROR,
                "the provider issued a token that cannot be sent in a header",
                details={"reason": "invalid_provider_token"},
            )
        assert upstream.pool is not None
        try:
            return await upstream.pool.request(
                request.method,
                request.target,
                [*request.headers, (b"Authorization", authorization)],
                request.body,
                request.length,
            )
        except UpstreamTimeout:
            raise ATHError(
                ErrorCode.UPSTREAM_TIMEOUT,
                f"provider {upstream.provider_id!r} did not answer within {upstream.timeout:g} s",
                details={"provider_id": upstream.provider_id},
            ) from None
        except UpstreamError as exc:
            raise ATHError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"provider {upstream.provider_id!r} could not be reached ({exc})",
                details={"provider_id": upstream.provider_id},
            ) from None

    async def _after_401(
        self,
        upstream: Upstream,
        request: _Request,
        info: TokenInfo,
        response: Http1Response,
        attempt: _Attempt,
    ) -> Http1Response:
        response.release()
        # The provider refused its own token: refresh it (persisted by the engine).
        attempt.audited = True  # the engine audits a refused refresh
        creds = await self._credentials_for(info, force_refresh=True)
        attempt.audited = False
        if request.body is not None:
            raise ATHError(
                ErrorCode.OAUTH_ERROR,
                "the provider rejected the stored token; it has been refreshed, so send the "
                "request again",
                details={"reason": "provider_token_refreshed", "retryable": True},
            )
        retried = await self._forward(upstream, request, creds)
        if retried.status == 401:
            retried.release()
            if info.grant_id is not None:
                self.engine.vault.forget(info.token_id)
                await self.engine.mark_grant_needs_user(
                    info.grant_id, "provider answered 401 after a token refresh"
                )
            raise ATHError(
                ErrorCode.OAUTH_ERROR,
                "the provider rejects the user's token even after a refresh; the user must "
                "authorize this agent again",
                details={"reason": "user_reauthorization_required"},
            )
        return retried


class _Request:
    """What goes upstream: the agent's method, target, kept headers and body."""

    __slots__ = ("body", "headers", "length", "method", "target")

    def __init__(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
        length: int | None,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.length = length


class _Attempt:
    """What is known about one proxy call so far (for audit and metrics)."""

    __slots__ = ("audited", "info", "mcp", "mcp_call", "method", "path", "provider_id")

    def __init__(self) -> None:
        self.mcp: McpGate | None = None
        self.mcp_call: McpCall | None = None
        self.provider_id = "-"
        self.method = ""
        self.path = ""
        self.info: TokenInfo | None = None
        self.audited = False


def _split_headers(
    headers: list[tuple[bytes, bytes]],
) -> tuple[str | None, str | None, list[tuple[bytes, bytes]], bool, int | None]:
    """Bearer token, X-ATH-Agent-ID, the headers to forward (as bytes, unchanged), whether a
    body follows, and its length when the agent declared one."""
    token: str | None = None
    agent: str | None = None
    has_body = False
    length: int | None = None
    connection_named: set[bytes] | None = None
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        lower = name.lower()
        if lower == b"authorization":
            token = bearer_token(value.decode("latin-1")) or token
            continue
        if lower == _AGENT_ID:
            agent = value.decode("latin-1").strip()
            continue
        if lower == b"content-length":
            # The ASGI server checked it; the upstream request declares it again itself.
            declared = int(value)
            if declared:
                has_body, length = True, declared
            else:
                kept.append((name, value))
            continue
        if lower == b"transfer-encoding":
            has_body = True
            continue
        if lower == b"connection":
            if connection_named is None:
                connection_named = set()
            connection_named.update(v.strip().lower() for v in value.split(b","))
            continue
        if lower in HOP_BY_HOP or lower in _AGENT_ONLY or lower.startswith(_RESERVED):
            continue
        kept.append((name, value))
    if connection_named:
        kept = [(n, v) for n, v in kept if n.lower() not in connection_named]
    return token, agent, kept, has_body, length


async def _body_stream(receive: Receive) -> AsyncIterator[bytes]:
    """The agent's request body, chunk by chunk as it arrives (never buffered whole)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ATHError(ErrorCode.INVALID_REQUEST, "the client went away mid-request")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _response_headers(response: Http1Response) -> list[tuple[bytes, bytes]]:
    kept: list[tuple[bytes, bytes]] = []
    named: set[bytes] | None = None
    for name, value in response.headers:
        lower = name.lower()
        if lower in HOP_BY_HOP:
            if lower == b"connection":
                named = {v.strip().lower() for v in value.split(b",")}
            continue
        kept.append((name, value))
    if named:
        kept = [(n, v) for n, v in kept if n.lower() not in named]
    return kept


class CredentialLeak(Exception):
    """The upstream echoed the provider token; the response is withheld or cut."""


async def _relay(response: Http1Response, send: Send, secret: str) -> None:
    """Send the provider's answer on, streaming large bodies; never let ``secret`` through."""
    headers = _response_headers(response)
    needle = secret.encode("latin-1", "replace")
    if any(needle in value for _, value in headers):
        raise _leak()
    length = response.content_length
    try:
        if length is not None and length <= _BUFFER_LIMIT:
            # Small answers whole: one response start and one body message.
            body = await response.read()
            if needle in body:
                raise _leak()
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            await send({"type": "http.response.body", "body": body})
            return
        chunks = response.iter_chunks()
        first = await anext(chunks, b"")
        tail = first[-len(needle) :] if first else b""
        if needle in first:
            raise _leak()
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if first:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        async for chunk in chunks:
            if needle in tail + chunk:
                # Headers are gone already: cut the connection rather than pass the token on.
                raise CredentialLeak("upstream response echoed the provider token")
            tail = (tail + chunk)[-len(needle) :]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except UpstreamTimeout:
        raise ATHError(
            ErrorCode.UPSTREAM_TIMEOUT, "the provider stopped sending its answer in time"
        ) from None
    except UpstreamError as exc:
        raise ATHError(
            ErrorCode.UPSTREAM_UNAVAILABLE, f"the provider's answer broke off ({exc})"
        ) from None


def _leak() -> ATHError:
    _log.error("upstream response contained the provider token; withheld from the agent")
    return ATHError(
        ErrorCode.OAUTH_ERROR,
        "the provider's response contained the gateway's credential and was withheld",
        details={"reason": "credential_in_response"},
    )


def _status_class(status: int) -> str:
    return f"upstream_{status // 100}xx"


async def _send_error(send: Send, exc: ATHError) -> None:
    headers, body = error_parts(exc)
    headers.append((b"pragma", b"no-cache"))
    try:
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except Exception:
        _log.warning("could not send error %s to the agent", exc.code.value)


async def _send_mcp_error(send: Send, exc: ATHError, attempt: _Attempt, receive: Receive) -> None:
    request_id = attempt.mcp_call.request_id if attempt.mcp_call is not None else None
    if attempt.mcp_call is None and attempt.method == "POST" and attempt.mcp is not None:
        # Refused before the message was read: read it (bounded) for its id.
        with contextlib.suppress(Exception):
            request_id = (await attempt.mcp.read(receive)).request_id
    try:
        await send_jsonrpc_error(send, exc, request_id)
    except Exception:
        _log.warning("could not send error %s to the agent", exc.code.value)


async def _relay_listing(
    response: Http1Response,
    send: Send,
    secret: str,
    gate: McpGate,
    call: McpCall,
    info: TokenInfo,
) -> None:
    """A ``tools/list`` (…) answer, read whole (bounded) and cut to what the token allows."""
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in response.iter_chunks():
            total += len(chunk)
            if total > MAX_LISTING_BYTES:
                raise ATHError(
                    ErrorCode.UPSTREAM_UNAVAILABLE,
                    f"the MCP server's listing is larger than {MAX_LISTING_BYTES} bytes",
                )
            chunks.append(chunk)
    except UpstreamError:
        raise ATHError(
            ErrorCode.UPSTREAM_UNAVAILABLE, "the MCP server's listing broke off"
        ) from None
    body = b"".join(chunks)
    if secret.encode("latin-1", "replace") in body:
        raise _leak()
    encoding = (response.header(b"content-encoding") or "identity").lower()
    if encoding != "identity":
        raise ATHError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"the MCP server compressed its listing ({encoding}); it cannot be filtered",
        )
    content_type = (response.header(b"content-type") or "").lower()
    filtered = gate.filter_body(call, body, content_type, info.scopes)
    headers = [
        (name, value)
        for name, value in _response_headers(response)
        if name.lower() != b"content-length"
    ]
    headers.append((b"content-length", str(len(filtered)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": filtered})
