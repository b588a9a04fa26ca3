"""ATH inside an MCP server built with the official ``mcp`` SDK (native mode).

:class:`ATHMcp` wraps an ``MCPServer``: its streamable-HTTP transport demands an ATH token on
every HTTP request, each tool (prompt, resource) is mapped to the scopes that allow it, a call
outside the token's scopes is refused with a JSON-RPC error carrying ``SCOPE_NOT_APPROVED``,
listings show only what the token allows, and a tool reads who is calling with
:func:`ath_caller`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from athkit.protocol import (
    AGENT_ID_HEADER,
    JSONRPC_ATH_ERROR,
    ATHError,
    ErrorCode,
    JSONLimits,
    JSONRejected,
    McpScopeMap,
    McpTarget,
    jsonrpc_ath_error,
    loads_bounded,
    parse_target,
    target_of,
)
from athkit.server import AccessCheck, ATHEngine, ATHPrincipal, bearer_token
from athkit.server._web import NO_STORE, mcp_scope_violation

_F = TypeVar("_F", bound=Callable[..., Any])

MAX_PEEK_BYTES = 1 << 20
"""How much of a refused request's body is read to find its JSON-RPC id."""


@dataclass(frozen=True, slots=True)
class _Call:
    engine: ATHEngine
    principal: ATHPrincipal


_CURRENT: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("ath_mcp", default=None)


def ath_caller(_ctx: object = None) -> ATHPrincipal:
    """Who is calling the current tool: agent, user and scopes (an :class:`ATHPrincipal`).

    Call it inside a tool, prompt or resource function of a server guarded by :class:`ATHMcp`
    (passing the tool's ``Context`` is allowed and only documents intent). Raises
    :class:`LookupError` outside such a request.
    """
    call = _CURRENT.get()
    if call is None:
        raise LookupError("no ATH caller: this code is not running inside an ATH-guarded request")
    return call.principal


def _mcp_error(exc: ATHError) -> MCPError:
    body = jsonrpc_ath_error(exc)["error"]
    return MCPError(JSONRPC_ATH_ERROR, body["message"], body["data"])


class ATHMcp:
    """ATH for an ``MCPServer``: tokens on its HTTP transport, scopes per tool.

    ``scopes`` maps each scope to the MCP names it allows (``"tool"``, ``"prompt:name"``,
    ``"resource:uri*"``, see :class:`~athkit.protocol.McpScopeMap`); :meth:`tool` adds a tool
    and its scope in one decorator. A tool that no scope lists is hidden and refused.
    ``engine`` is the native service's :class:`~athkit.server.ATHEngine`; when omitted it is
    taken per request from ``app.state.ath_engine`` of the app this one is mounted in (see
    :func:`mount_mcp`). ``provider_id`` defaults to the engine's only provider.
    """

    def __init__(
        self,
        server: MCPServer[Any],
        scopes: Mapping[str, Iterable[str]] | None = None,
        *,
        engine: ATHEngine | None = None,
        provider_id: str | None = None,
    ) -> None:
        # A malformed scope map is refused before anything is kept or hooked in.
        self._config: dict[str, list[str]] = {}
        for scope, names in (scopes or {}).items():
            if isinstance(names, str):
                raise ValueError(f"MCP names of scope {scope!r} must be a list of strings")
            for name in names:
                self._add(scope, name)
        self._map = McpScopeMap.from_config(self._config)
        self.server = server
        self.engine = engine
        self.provider_id = provider_id
        server.middleware.append(self._middleware)

    def _add(self, scope: str, name: str) -> None:
        parse_target(name)  # refuses a malformed entry now, not at the first call
        self._config.setdefault(scope, []).append(name)

    @property
    def scope_map(self) -> McpScopeMap:
        """The scope → tools, prompts and resources map in force."""
        return self._map

    def tool(self, scope: str, *scopes: str, **tool_options: Any) -> Callable[[_F], _F]:
        """Register a tool on the server (``MCPServer.tool(**tool_options)``) allowed by
        ``scope`` (or any of ``scopes``)."""

        def decorator(fn: _F) -> _F:
            name = tool_options.get("name") or fn.__name__
            self.server.tool(**tool_options)(fn)
            for each in (scope, *scopes):
                self._add(each, name)
            self._map = McpScopeMap.from_config(self._config)
            return fn

        return decorator

    # --- the HTTP transport --------------------------------------------------------------------

    def streamable_http_app(self, **options: Any) -> ASGIApp:
        """The server's streamable-HTTP ASGI app (``MCPServer.streamable_http_app(**options)``)
        behind the ATH token check. Serve it with its lifespan, or mount it with
        :func:`mount_mcp`."""
        inner = self.server.streamable_http_app(**options)
        return _TokenGate(inner, self)

    def lifespan(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The MCP session manager's lifetime, for an app that mounts this one."""
        return self.server.session_manager.run()

    def _engine_for(self, scope: Scope) -> ATHEngine:
        if self.engine is not None:
            return self.engine
        app = scope.get("app")
        engine = getattr(getattr(app, "state", None), "ath_engine", None)
        if not isinstance(engine, ATHEngine):
            raise RuntimeError("ATHMcp needs engine=... or app.state.ath_engine")
        return engine

    def _provider(self, engine: ATHEngine) -> str | None:
        if self.provider_id is not None:
            return self.provider_id
        return engine.settings.only_provider_id

    async def authenticate(self, scope: Scope) -> _Call:
        """Check the request's ATH token and ``X-ATH-Agent-ID`` (both required, ATH §4.6)."""
        engine = self._engine_for(scope)
        request = Request(scope)
        # ATH §4.6 steps 1-3 (the one access check: token, X-ATH-Agent-ID, provider), audited;
        # the per-tool step 4 happens in the MCP layer, where the tool's name is known.
        granted = await AccessCheck(engine).check(
            method=request.method,
            path=request.url.path,
            token=bearer_token(request.headers.get("authorization")),
            agent_id=request.headers.get(AGENT_ID_HEADER),
            provider_id=self._provider(engine),
        )
        principal = granted.token
        return _Call(engine, principal)

    # --- the MCP layer -------------------------------------------------------------------------

    async def _middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.request_id is None:  # a notification: nothing to answer, nothing to allow
            return await call_next(ctx)
        call = _CURRENT.get()
        if call is None:
            # Not through the token gate (stdio, or an app serving the bare server): fail closed.
            raise _mcp_error(
                ATHError(
                    ErrorCode.TOKEN_INVALID,
                    "this MCP server requires an ATH token on its HTTP transport",
                    details={"reason": "missing_token"},
                )
            )
        try:
            target = target_of(ctx.method, ctx.params)
        except ValueError:
            return await call_next(ctx)  # malformed params: the SDK answers INVALID_PARAMS
        if target is not None:
            await self._check(call, ctx.method, target)
            return await call_next(ctx)
        result = await call_next(ctx)
        if ctx.method in ("tools/list", "prompts/list", "resources/list"):
            data = (
                result.model_dump(by_alias=True, mode="json", exclude_none=True)
                if isinstance(result, BaseModel)
                else result
            )
            return self._map.filter_listing(ctx.method, data, call.principal.scopes)  # type: ignore[no-any-return]
        return result

    async def _check(self, call: _Call, method: str, target: McpTarget) -> None:
        principal = call.principal
        fields: dict[str, Any] = {
            "agent_id": principal.agent_id,
            "client_id": principal.client_id,
            "user_id": principal.user_id,
            "provider_id": principal.provider_id,
            "effective_scopes": list(principal.scopes),
        }
        details = {"mcp_method": method, target.kind: target.name}
        if self._map.allowed(target, principal.scopes):
            await call.engine.audit("proxy_request", details=details, **fields)
            return
        need = self._map.scopes_allowing(target)
        exc = mcp_scope_violation(target, need, principal.scopes)
        await call.engine.audit(
            "scope_violation",
            requested_scopes=need,
            denied_scopes=need,
            reason=f"scope_violation: {method} {target}",
            code=exc.code.value,
            details=details,
            **fields,
        )
        raise _mcp_error(exc)


class _TokenGate:
    """ASGI: every HTTP request must carry a valid ATH token before the MCP app sees it."""

    def __init__(self, app: ASGIApp, guard: ATHMcp) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            call = await self.guard.authenticate(scope)
        except ATHError as exc:
            await (await refusal(exc, scope, receive))(scope, receive, send)
            return
        token = _CURRENT.set(call)
        try:
            await self.app(scope, receive, send)
        finally:
            _CURRENT.reset(token)


async def _request_id(scope: Scope, receive: Receive) -> Any:
    """The JSON-RPC id of a refused POST (read within a bound), or ``None``."""
    if scope.get("method") != "POST":
        return None
    body = b""
    while len(body) <= MAX_PEEK_BYTES:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    else:
        return None
    try:
        parsed = loads_bounded(body, JSONLimits(max_bytes=MAX_PEEK_BYTES))
    except JSONRejected:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get("id"), str | int):
        return parsed["id"]
    return None


async def refusal(exc: ATHError, scope: Scope, receive: Receive) -> JSONResponse:
    """The HTTP answer to a refused MCP request: the ATH status, and a JSON-RPC error carrying
    the ATH §7 body (so MCP clients show the code), with ``WWW-Authenticate`` on a 401."""
    headers = {**NO_STORE, **exc.headers}
    if exc.status == 401 and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = (
            f'Bearer realm="ath", error="invalid_token", error_description="{exc.code}"'
        )
    body = jsonrpc_ath_error(exc, await _request_id(scope, receive))
    return JSONResponse(body, status_code=exc.status, headers=headers)


def mount_mcp(app: Starlette, mcp: ATHMcp, *, path: str = "/mcp", **options: Any) -> Starlette:
    """``app`` (a native service from :func:`~athkit.server.create_native_app`) with the guarded
    MCP server at ``path``, both lifespans run together. Returns the combined app."""
    gate = mcp.streamable_http_app(streamable_http_path=path, **options)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with app.router.lifespan_context(app), mcp.lifespan():
            yield

    combined = Starlette(routes=[Route(path, gate), Mount("/", app=app)], lifespan=lifespan)
    combined.state.ath_engine = app.state.ath_engine
    return combined
