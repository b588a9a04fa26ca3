"""``ath mcp``: a stdio MCP server that puts an ATH service in front of an LLM client.

The LLM client (a desktop app, an IDE) starts ``ath mcp ...`` and talks MCP over its stdin and
stdout. The bridge offers:

- ``ath_status`` — who the agent is, where it is registered, the token's scopes and lifetime;
- ``ath_authorize`` — starts the person's consent and answers the link for them to open; a
  loopback listener catches the redirect and stores the token (the LLM client never sees it);
- one tool per configured API route (``--route "NAME METHOD /path [scope]"``), listed only while
  the token holds its scope, called through the gateway proxy or the native API;
- with ``--mcp PATH``, every tool of the service's own MCP endpoint that the token allows
  (through the gateway's ``/ath/proxy/{provider}PATH`` or at the service's ``PATH``).

Refusals come back as tool errors whose text starts with the ATH code, so the model can tell the
person what to do (for example: call ``ath_authorize``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import string
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from mcp import Client
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)

from athkit import __version__
from athkit.agent import (
    AsyncATHClient,
    ATHClientError,
    LoopbackListener,
    new_state,
)
from athkit.agent._core import error_from_response, is_ath_error
from athkit.integrations.mcp._client import ATHAuth, ath_error, ath_streamable_http
from athkit.protocol import PROXY_PREFIX

STATUS_TOOL = "ath_status"
AUTHORIZE_TOOL = "ath_authorize"
CONSENT_TIMEOUT = 600.0
_BODYLESS = frozenset({"GET", "DELETE", "HEAD"})


@dataclass(frozen=True)
class RouteTool:
    """One API route offered as a tool."""

    name: str
    method: str
    path: str
    scope: str | None = None

    @classmethod
    def parse(cls, text: str) -> RouteTool:
        """``"NAME METHOD /path [scope]"``."""
        parts = text.split()
        if len(parts) not in (3, 4) or not parts[2].startswith("/"):
            raise ValueError(f"--route {text!r}: expected 'NAME METHOD /path [scope]'")
        name, method, path = parts[0], parts[1].upper(), parts[2]
        if name in (STATUS_TOOL, AUTHORIZE_TOOL):
            raise ValueError(f"--route {text!r}: {name} is the bridge's own tool")
        return cls(name, method, path, parts[3] if len(parts) == 4 else None)

    @property
    def path_fields(self) -> list[str]:
        """The ``{names}`` in the path template."""
        return [f for _, f, _, _ in string.Formatter().parse(self.path) if f]

    def tool(self) -> Tool:
        """The MCP description of this route."""
        properties: dict[str, Any] = {f: {"type": "string"} for f in self.path_fields}
        properties["query"] = {
            "type": "object",
            "description": "query string parameters",
            "additionalProperties": {"type": "string"},
        }
        if self.method not in _BODYLESS:
            properties["body"] = {"description": "JSON request body"}
        scope = f" (needs {self.scope})" if self.scope else ""
        return Tool(
            name=self.name,
            description=f"{self.method} {self.path} on the ATH service{scope}",
            input_schema={
                "type": "object",
                "properties": properties,
                "required": self.path_fields,
            },
        )


def _text(text: str, *, error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=text)], is_error=error)


class Bridge:
    """The bridge's state: the agent's ATH client, routes, the optional MCP upstream."""

    def __init__(
        self,
        agent: AsyncATHClient,
        *,
        provider_id: str | None,
        routes: Sequence[RouteTool] = (),
        mcp_path: str | None = None,
        scopes: Sequence[str] = (),
        developer: dict[str, str] | None = None,
    ) -> None:
        self.agent = agent
        self.provider_id = provider_id
        self.routes = {r.name: r for r in routes}
        self.mcp_path = mcp_path
        self.scopes = list(scopes)
        self.developer = developer
        self._pending: asyncio.Task[None] | None = None
        self._listener: LoopbackListener | None = None
        self._last_authorization: str | None = None

    async def provider(self) -> str:
        """The provider (native: the service's app_id, found by discovery)."""
        if self.provider_id is None:
            auth = ATHAuth(self.agent)
            self.provider_id = await auth._provider()
        return self.provider_id

    def _token_scopes(self) -> list[str]:
        token = self.agent.token(self.provider_id) if self.provider_id else None
        if token is None or token.is_expired():
            return []
        return list(token.effective_scopes)

    def _mcp_url(self) -> str:
        assert self.mcp_path is not None
        if self.agent.mode == "gateway":
            provider = quote(self.provider_id or "", safe="")
            return f"{self.agent.base_url}{PROXY_PREFIX}{provider}{self.mcp_path}"
        return self.agent.base_url + self.mcp_path

    # --- tools/list ------------------------------------------------------------------------

    async def list_tools(self) -> list[Tool]:
        """The bridge's own tools, the allowed routes, and the upstream's allowed tools.

        When the service cannot be reached, only ``ath_status`` and ``ath_authorize`` are
        offered (they say what is wrong when called).
        """
        tools = [
            Tool(
                name=STATUS_TOOL,
                description="Who this agent is, where, and what its ATH token allows.",
                input_schema={"type": "object", "properties": {}},
            ),
            Tool(
                name=AUTHORIZE_TOOL,
                description="Ask the person for access: answers a consent link for them to "
                "open in a browser. Call ath_status afterwards.",
                input_schema={
                    "type": "object",
                    "properties": {
                        "scopes": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "scopes to ask for (default: the configured ones)",
                        }
                    },
                },
            ),
        ]
        try:
            await self.provider()
        except (ATHClientError, ValueError):
            return tools
        granted = self._token_scopes()
        tools += [r.tool() for r in self.routes.values() if r.scope is None or r.scope in granted]
        if self.mcp_path is not None and granted:
            with contextlib.suppress(ATHClientError, MCPError, OSError):
                async with self._upstream() as client:
                    tools += [
                        t
                        for t in (await client.list_tools()).tools
                        if t.name not in {STATUS_TOOL, AUTHORIZE_TOOL, *self.routes}
                    ]
        return tools

    def _upstream(self) -> Client:
        return Client(ath_streamable_http(self._mcp_url(), ATHAuth(self.agent, self.provider_id)))

    # --- tools/call ------------------------------------------------------------------------

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        """Run one tool; every refusal is a tool error starting with its code."""
        try:
            if name == STATUS_TOOL:
                with contextlib.suppress(ATHClientError, ValueError):
                    await self.provider()  # a status is answered even when discovery fails
                return _text(json.dumps(await self.status(), indent=2))
            await self.provider()
            if name == AUTHORIZE_TOOL:
                return _text(await self.authorize(arguments.get("scopes")))
            route = self.routes.get(name)
            if route is not None:
                return await self._call_route(route, arguments)
            if self.mcp_path is not None:
                return await self._call_upstream(name, arguments)
            return _text(f"unknown tool {name!r}", error=True)
        except ATHClientError as exc:
            hint = (
                " Call ath_authorize to ask the person again."
                if exc.code in ("NOT_AUTHORIZED", "TOKEN_EXPIRED", "TOKEN_REVOKED", "TOKEN_INVALID")
                else ""
            )
            return _text(f"{exc}{hint}", error=True)
        except ValueError as exc:
            return _text(f"INVALID_REQUEST: {exc}", error=True)

    async def _call_route(self, route: RouteTool, arguments: dict[str, Any]) -> CallToolResult:
        values = {f: str(arguments.get(f, "")) for f in route.path_fields}
        if any(v in ("", ".", "..") for v in values.values()):
            raise ValueError(f"{route.name} needs {', '.join(route.path_fields)}")
        path = route.path.format(**{f: quote(v, safe="") for f, v in values.items()})
        query = arguments.get("query") or None
        body = arguments.get("body")
        send: dict[str, Any] = {"params": query}
        if route.method not in _BODYLESS and body is not None:
            send["json"] = body
        if self.agent.mode == "gateway":
            response = await self.agent.proxy(
                await self.provider(), route.method, path, raise_for_ath_error=False, **send
            )
        else:
            response = await self.agent.request(
                route.method, path, provider_id=self.provider_id, raise_for_ath_error=False, **send
            )
        if is_ath_error(response):
            raise error_from_response(response)
        return _text(
            f"HTTP {response.status_code}\n{response.text}", error=response.status_code >= 400
        )

    async def _call_upstream(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        try:
            async with self._upstream() as client:
                return await client.call_tool(name, arguments)
        except MCPError as exc:
            refusal = ath_error(exc)
            if refusal is not None:
                raise refusal from None
            return _text(f"{exc.message}", error=True)

    # --- the bridge's own tools ------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """What ``ath_status`` answers."""
        stored = self.agent.store.get_client(self.agent.base_url, self.agent.agent_id)
        token = self.agent.token(self.provider_id) if self.provider_id else None
        return {
            "server": self.agent.base_url,
            "mode": self.agent.mode,
            "agent_id": self.agent.agent_id,
            "provider_id": self.provider_id,
            "registered": stored is not None,
            "agent_status": stored.agent_status if stored else None,
            "token": None
            if token is None or token.is_expired()
            else {"scopes": token.effective_scopes, "expires_in": token.expires_in()},
            "authorization": self._last_authorization,
        }

    async def authorize(self, scopes: Any) -> str:
        """Start the consent; the link for the person, or why not."""
        wanted = [str(s) for s in scopes] if isinstance(scopes, list) and scopes else self.scopes
        if not wanted:
            raise ValueError("no scopes to ask for: pass scopes, or start ath mcp with --scope")
        provider = await self.provider()
        if self.agent.store.get_client(self.agent.base_url, self.agent.agent_id) is None:
            if self.developer is None:
                raise ValueError("the agent is not registered here; run `ath register` first")
            await self.agent.register({provider: wanted}, developer=self.developer)
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()  # one consent at a time: the newest link wins
        if self._listener is not None:
            self._listener.close()
        state = new_state()
        listener = self._listener = LoopbackListener(state)
        try:
            pending = await self.agent.authorize(
                provider, wanted, user_redirect_uri=listener.redirect_uri, state=state
            )
        except BaseException:
            listener.close()
            raise
        self._pending = asyncio.get_running_loop().create_task(
            self._finish(listener, pending.ath_session_id)
        )
        self._last_authorization = "waiting for the person's consent"
        print(f"ath mcp: consent link: {pending.authorization_url}", file=sys.stderr, flush=True)
        return (
            f"Ask the person to open this link and approve {', '.join(wanted)} for "
            f"{provider}:\n\n{pending.authorization_url}\n\nThen call {STATUS_TOOL}."
        )

    async def _finish(self, listener: LoopbackListener, session_id: str) -> None:
        try:
            with listener:
                code = await listener.wait_async(CONSENT_TIMEOUT)
            token = await self.agent.exchange_token(code, session_id)
            self._last_authorization = f"authorized: {', '.join(token.effective_scopes)}"
        except ATHClientError as exc:
            self._last_authorization = f"not authorized: {exc}"


def build_server(bridge: Bridge) -> Server[Any]:
    """The low-level MCP server whose tools are the bridge's."""

    async def on_list_tools(_ctx: Any, _params: PaginatedRequestParams | None) -> ListToolsResult:
        return ListToolsResult(tools=await bridge.list_tools())

    async def on_call_tool(_ctx: Any, params: CallToolRequestParams) -> CallToolResult:
        return await bridge.call_tool(params.name, dict(params.arguments or {}))

    return Server(
        "ath",
        version=__version__,
        instructions="Tools of an ATH-protected service. If a tool answers NOT_AUTHORIZED or "
        "TOKEN_*, call ath_authorize and give the person the link.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


async def serve_stdio(bridge: Bridge) -> None:
    """Serve the bridge on stdin/stdout until the client closes them."""
    server = build_server(bridge)
    async with bridge.agent, stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
