"""Every server athkit ships, running on 127.0.0.1, and every endpoint each one serves.

``ath demo``'s two stacks hold them all: the ATH Shop (native ATH endpoints, admin API, user
routes, storefront, its agent API and the operator console) with its OAuth server, and the
gateway (catalog, health, metrics, ATH endpoints, admin API, console, proxy) in front of
Example Mail (its OAuth server and its mail API). The endpoint list is read from each app's own
route table, so an endpoint added later is probed without touching these tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.routing import BaseRoute, Mount, Route

import athkit.demo._stack as demo_stack
from athkit.agent import ATHClient
from athkit.demo.shop import SHOP_PROVIDER_ID
from athkit.testing import drive_consent


@dataclass(frozen=True)
class Endpoint:
    """One method on one route of one server."""

    server: str  # "shop", "shop-oauth", "gateway", "mail-oauth", "mail-api"
    base: str
    method: str
    path: str  # with {param} placeholders


@dataclass
class Credentials:
    """Real credentials, so that hostile input also reaches what lies behind authentication."""

    admin: dict[str, str] = field(default_factory=dict)  # server → admin API token
    bearer: dict[str, str] = field(default_factory=dict)  # server → an agent's ATH token
    agent_id: dict[str, str] = field(default_factory=dict)  # server → that agent's agent_id
    client: dict[str, tuple[str, str]] = field(default_factory=dict)  # server → id, secret


@dataclass
class World:
    endpoints: list[Endpoint]
    credentials: Credentials
    servers: dict[str, str]  # name → base URL


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Mount):
            inner = getattr(route, "routes", None) or []
            yield from _routes(list(inner), prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted(route.methods or ()):
                yield method, prefix + route.path


def _name(app: Any, url: str, seen: dict[str, str]) -> str:
    paths = {p for _, p in _routes(list(getattr(getattr(app, "web", app), "routes", [])))}
    if "/.well-known/oauth-authorization-server" in paths:
        return "shop-oauth" if "shop-oauth" not in seen else "mail-oauth"
    if "/.well-known/ath.json" in paths:
        return "gateway"
    if "/api/cart" in paths:
        return "shop"
    if "/messages" in paths:
        return "mail-api"
    return f"other-{len(seen)}"


@contextlib.contextmanager
def running_world() -> Iterator[World]:
    """Start both demo stacks; yield their endpoints and working credentials."""
    started: list[tuple[Any, str]] = []
    original = demo_stack.serve_in_thread

    @contextlib.contextmanager
    def recording(app: Any, **kwargs: Any) -> Iterator[Any]:
        with original(app, **kwargs) as handle:
            started.append((app, handle.url))
            yield handle

    demo_stack.serve_in_thread = recording  # type: ignore[assignment]
    try:
        with contextlib.ExitStack() as stack:
            native = stack.enter_context(demo_stack.native_stack())
            gateway = stack.enter_context(demo_stack.gateway_stack())
            servers: dict[str, str] = {}
            endpoints: list[Endpoint] = []
            for app, url in started:
                routes = list(getattr(getattr(app, "web", app), "routes", []))
                if not routes:
                    continue  # an agent's identity host: probed through registration
                name = _name(app, url, servers)
                servers[name] = url
                endpoints += [Endpoint(name, url, m, p) for m, p in _routes(routes) if m != "HEAD"]
            # The gateway's raw ASGI parts: the proxy (and the forward-auth check when enabled).
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                endpoints.append(
                    Endpoint("gateway", servers["gateway"], method, "/ath/proxy/{provider}/{rest}")
                )
            endpoints.append(Endpoint("gateway", servers["gateway"], "GET", "/ath/check"))
            creds = Credentials(
                admin={"shop": native.admin_token, "gateway": gateway.admin_token},
            )
            _connect(
                creds,
                "shop",
                native.shop_url,
                native.shopbot_id,
                native.shopbot_key,
                SHOP_PROVIDER_ID,
                ["products:read", "cart:read", "cart:write", "orders:read"],
                native.username,
                native.password,
            )
            _connect(
                creds,
                "gateway",
                gateway.gateway_url,
                gateway.mailbot_id,
                gateway.mailbot_key,
                demo_stack.MAIL_PROVIDER_ID,
                ["mail:read", "mail:delete"],
                gateway.username,
                gateway.password,
            )
            yield World(endpoints, creds, servers)
    finally:
        demo_stack.serve_in_thread = original  # type: ignore[assignment]


def _connect(
    creds: Credentials,
    server: str,
    url: str,
    agent_id: str,
    key: Any,
    provider: str,
    scopes: list[str],
    username: str,
    password: str,
) -> None:
    """Register the demo's agent, let the demo user consent, keep its token and credentials."""
    redirect = f"{agent_id.rsplit('/.well-known', 1)[0]}/callback"
    with ATHClient(url, agent_id=agent_id, private_key=key) as agent:
        registered = agent.register(
            {provider: scopes}, developer={"name": "Tests", "id": "tests"}, redirect_uris=[redirect]
        )
        pending = agent.authorize(provider, scopes, user_redirect_uri=redirect)
        with httpx.Client(timeout=10) as browser:
            target = drive_consent(
                browser,
                pending.authorization_url,
                username=username,
                password=password,
                stop_at=redirect,
            )
        assert isinstance(target, str), target
        token = agent.exchange_token(httpx.URL(target).params["code"], pending.ath_session_id)
    creds.bearer[server] = token.access_token
    creds.agent_id[server] = agent_id
    creds.client[server] = (registered.client_id, registered.client_secret)
