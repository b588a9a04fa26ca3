"""Real servers on 127.0.0.1 for the MCP tests: a native ATH service serving an ``mcp`` SDK
server at ``/mcp`` (guarded by ``ATHMcp``), with our OAuth server as its login.

Scopes: ``products:read`` and ``cart:write`` are approved at registration, ``orders:write``
goes to an operator who never approves it in these tests.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
from mcp.server import MCPServer
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context
from starlette.routing import Route

from athkit.agent import AsyncATHClient, generate_key, serve_identity_async
from athkit.integrations.mcp import ATHAuth, ATHMcp, ath_caller, mount_mcp
from athkit.oauthserver import create_oauth_app
from athkit.protocol import (
    ScopeRouteMap,
    generate_private_key,
    private_key_to_pem,
    public_key_to_jwk,
)
from athkit.server import (
    AttestationVerifier,
    FetchPolicy,
    MemoryReplayStore,
    ProviderSettings,
    ServerSettings,
    create_native_app,
    memory_stores,
)
from athkit.testing import free_port, serve_in_thread
from tests.integration.agent.conftest import (
    _PROVIDER_SECRET,
    APP_ID,
    DEVELOPER,
    SCOPES,
    _cart,
    _Consenting,
    _oauth_config,
    _products,
)


@dataclass
class McpNative(_Consenting):
    """The running native service; its MCP endpoint is ``mcp_url``."""

    url: str
    mcp_url: str
    oauth_url: str
    app_id: str = APP_ID


def build_native_mcp() -> ATHMcp:
    """The test shop's MCP server, guarded by ATH."""
    from tests.integration.mcp.tools import add_shop_tools

    server: MCPServer[Any] = MCPServer("Test Shop tools", log_level="WARNING")
    # Prompts and resources by table; tools by decorator (both ways of ATHMcp).
    guard = ATHMcp(
        server,
        {
            "products:read": ["prompt:shopping_list", "resource:shop://products/*"],
            "orders:write": ["resource:shop://orders/*"],
        },
    )
    add_shop_tools(server, guard.tool)

    @server.prompt()
    def shopping_list() -> str:
        """Ask for a shopping list."""
        return "What do you need this week?"

    @server.prompt()
    def staff_notes() -> str:
        """A prompt no scope lists."""
        return "internal"

    @server.resource("shop://products/p1")
    def teapot() -> str:
        """The teapot's page."""
        return "Teapot"

    @server.resource("shop://orders/o1")
    def first_order() -> str:
        """An order."""
        return "order o1"

    @guard.tool("products:read")
    def whoami(ctx: Context) -> dict[str, Any]:
        """Who is calling, as the server sees it."""
        caller = ath_caller(ctx)
        return {"agent_id": caller.agent_id, "user_id": caller.user_id, "scopes": caller.scopes}

    return guard


@pytest.fixture(scope="package")
def mcp_native() -> Iterator[McpNative]:
    """The native service with its MCP endpoint, and its OAuth server."""
    oauth_port, service_port = free_port(), free_port()
    oauth_url = f"http://127.0.0.1:{oauth_port}"
    service_url = f"http://127.0.0.1:{service_port}"
    consent_key = generate_private_key()
    settings = ServerSettings(
        base_url=service_url,
        app_id=APP_ID,
        name="Test Shop",
        secret_key="s" * 40,
        allow_loopback=True,
        allow_http=True,
        consent_signing_key=private_key_to_pem(consent_key).decode(),
        providers=[
            ProviderSettings(
                provider_id=APP_ID,
                display_name="Test Shop",
                authorization_endpoint=f"{oauth_url}/authorize",
                token_endpoint=f"{oauth_url}/token",
                userinfo_endpoint=f"{oauth_url}/userinfo",
                client_id="shop-ath",
                client_secret=_PROVIDER_SECRET,
                scopes=list(SCOPES),
                auto_approve=["products:read", "cart:write"],
                review=["orders:write"],
            )
        ],
    )
    verifier = AttestationVerifier(
        replay_store=MemoryReplayStore(),
        fetcher=FetchPolicy(allow_http=True, allow_loopback=True),
    )
    native = create_native_app(
        settings,
        verifier=verifier,
        stores=memory_stores(),
        routes=[
            Route("/api/products", _products, methods=["GET"]),
            Route("/api/cart", _cart, methods=["POST"]),
        ],
        scope_map=ScopeRouteMap.from_config(
            {"products:read": ["GET /api/products"], "cart:write": ["POST /api/cart"]}
        ),
    )
    app = mount_mcp(native, build_native_mcp())
    oauth_app = create_oauth_app(
        _oauth_config(oauth_port, service_url, public_key_to_jwk(consent_key))
    )
    with (
        serve_in_thread(oauth_app, port=oauth_port),
        serve_in_thread(app, port=service_port),
    ):
        yield McpNative(url=service_url, mcp_url=f"{service_url}/mcp", oauth_url=oauth_url)


@dataclass
class Agent:
    """An agent with a published identity, an ATH client and an ``ATHAuth`` for MCP."""

    client: AsyncATHClient
    auth: ATHAuth

    @property
    def agent_id(self) -> str:
        return self.client.agent_id


@pytest.fixture
async def native_agent(mcp_native: McpNative) -> AsyncIterator[Agent]:
    """A fresh agent whose person consents to products:read only (unticks cart:write)."""
    key = generate_key()
    async with (
        serve_identity_async(key, name="MCP helper", developer=DEVELOPER) as agent_id,
        AsyncATHClient(mcp_native.url, agent_id=agent_id, private_key=key) as client,
    ):
        auth = ATHAuth(
            client,
            scopes=["products:read", "cart:write"],
            developer=DEVELOPER,
            opener=mcp_native.opener(scopes=["products:read"]),
        )
        yield Agent(client, auth)


# --- gateway mode: an MCP server that knows nothing of ATH, behind the gateway ----------------

GATEWAY_TOOLS = {
    "products:read": ["search_products", "stream_report"],
    "cart:write": ["add_to_cart"],
    "orders:write": ["place_order"],
}


class _UserinfoVerifier:
    """The upstream MCP server's own OAuth check (the SDK's ``TokenVerifier``): a bearer token
    is good when the provider's userinfo endpoint accepts it."""

    def __init__(self, oauth_url: str) -> None:
        self.oauth_url = oauth_url

    async def verify_token(self, token: str) -> AccessToken | None:
        async with httpx.AsyncClient(timeout=10) as http:
            info = await http.get(
                f"{self.oauth_url}/userinfo", headers={"Authorization": f"Bearer {token}"}
            )
        if info.status_code != 200:
            return None
        return AccessToken(token=token, client_id="gateway", scopes=[], subject=info.json()["sub"])


def _upstream_mcp(oauth_url: str, port: int) -> Any:
    from tests.integration.mcp.tools import add_shop_tools

    server: MCPServer[Any] = MCPServer(
        "Example Shop MCP",
        token_verifier=_UserinfoVerifier(oauth_url),
        auth=AuthSettings(
            issuer_url=oauth_url,  # type: ignore[arg-type]
            resource_server_url=f"http://127.0.0.1:{port}/mcp",  # type: ignore[arg-type]
            validate_token_resource=False,
        ),
    )
    add_shop_tools(server, lambda _scope: server.tool())
    return server.streamable_http_app()


@dataclass
class McpGateway(_Consenting):
    """The gateway in front of an MCP server (provider ``shop``)."""

    url: str
    mcp_url: str
    upstream_url: str
    oauth_url: str
    stores: Any
    app_id: str = APP_ID


@pytest.fixture(scope="package")
def mcp_gateway() -> Iterator[McpGateway]:
    """Gateway + OAuth server + an ``mcp`` SDK server (with its own OAuth check) upstream."""
    from pydantic import SecretStr

    from athkit.gateway import GatewayProviderSettings, GatewaySettings, create_gateway_app
    from athkit.gateway._mcp import McpUpstreamConfig

    oauth_port, gateway_port, upstream_port = free_port(), free_port(), free_port()
    oauth_url = f"http://127.0.0.1:{oauth_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    consent_key = generate_private_key()
    oauth_app = create_oauth_app(
        _oauth_config(oauth_port, gateway_url, public_key_to_jwk(consent_key))
    )
    settings = GatewaySettings(
        base_url=gateway_url,
        secret_key=SecretStr("g" * 40),
        gateway_id="test-gateway",
        allow_loopback=True,
        allow_http=True,
        consent_signing_key=private_key_to_pem(consent_key).decode(),
        providers=[
            GatewayProviderSettings(
                provider_id=APP_ID,
                display_name="Example Shop",
                authorization_endpoint=f"{oauth_url}/authorize",
                token_endpoint=f"{oauth_url}/token",
                userinfo_endpoint=f"{oauth_url}/userinfo",
                client_id="shop-ath",
                client_secret=SecretStr(_PROVIDER_SECRET),
                scopes=list(SCOPES),
                auto_approve=["products:read", "cart:write"],
                review=["orders:write"],
                api_base=f"http://127.0.0.1:{upstream_port}",
                routes={},
                mcp=McpUpstreamConfig(path="/mcp", tools=GATEWAY_TOOLS),
            )
        ],
    )
    verifier = AttestationVerifier(
        replay_store=MemoryReplayStore(),
        fetcher=FetchPolicy(allow_http=True, allow_loopback=True),
    )
    stores = memory_stores()
    app = create_gateway_app(settings, stores=stores, verifier=verifier)
    with (
        serve_in_thread(oauth_app, port=oauth_port),
        serve_in_thread(_upstream_mcp(oauth_url, upstream_port), port=upstream_port) as upstream,
        serve_in_thread(app, port=gateway_port),
    ):
        yield McpGateway(
            url=gateway_url,
            mcp_url=f"{gateway_url}/ath/proxy/{APP_ID}/mcp",
            upstream_url=upstream.url,
            oauth_url=oauth_url,
            stores=stores,
        )


@pytest.fixture
async def gateway_agent(mcp_gateway: McpGateway) -> AsyncIterator[Agent]:
    """A fresh agent at the gateway whose person consents to products:read only."""
    key = generate_key()
    async with (
        serve_identity_async(key, name="MCP gateway helper", developer=DEVELOPER) as agent_id,
        AsyncATHClient(mcp_gateway.url, agent_id=agent_id, private_key=key) as client,
    ):
        auth = ATHAuth(
            client,
            APP_ID,
            scopes=["products:read", "cart:write"],
            developer=DEVELOPER,
            opener=mcp_gateway.opener(scopes=["products:read"]),
        )
        yield Agent(client, auth)


IMPOSTOR_ID = "https://impostor.example/.well-known/agent.json"


class ImpostorHeader(httpx2.Auth):
    """Wraps an ``ATHAuth`` but claims another agent in ``X-ATH-Agent-ID`` (a stolen token)."""

    def __init__(self, inner: ATHAuth) -> None:
        self.inner = inner

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow = self.inner.async_auth_flow(request)
        sent = await flow.__anext__()
        sent.headers["X-ATH-Agent-ID"] = IMPOSTOR_ID
        while True:
            response = yield sent
            try:
                sent = await flow.asend(response)
            except StopAsyncIteration:
                return


async def open_as_impostor(url: str, auth: ATHAuth) -> BaseException:
    """Open an SDK client session whose requests claim another agent; returns the error."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(auth=ImpostorHeader(auth)) as http:
        try:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                await client.list_tools()
        except BaseException as exc:  # the SDK's task-group error around the MCPError
            return exc
    raise AssertionError("the session opened with another agent's header")
