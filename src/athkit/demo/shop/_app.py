"""``create_shop_app``: the ATH Shop as one Starlette application.

The ATH endpoints (ATH §8, native mode), the admin API, the engine and its attestation
verifier come from ``athkit.server.create_native_app``; the shop adds its storefront, its
"Connected agents" page and its scope-guarded ``/api``. One database holds the shop's tables and
the engine's, each with its own migrations and version table.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
from jinja2 import PackageLoader
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from athkit.console import mount_console
from athkit.demo.shop._api import api_routes
from athkit.demo.shop._config import (
    SHOP_APP_ID,
    SHOP_PROVIDER_ID,
    SHOP_SCOPES,
    ShopConfig,
)
from athkit.demo.shop._login import LoginClient
from athkit.demo.shop._pages import ShopWeb, page_routes
from athkit.demo.shop._service import ShopService
from athkit.demo.shop._sessions import LoginSessionStore
from athkit.pages import page_templates, status_page, wants_html
from athkit.server import ProviderSettings, ServerSettings, ath_error_handler, create_native_app
from athkit.storage import create_database


def server_settings(config: ShopConfig) -> ServerSettings:
    """The ATH engine's settings for the shop: one provider, the shop's own OAuth server."""
    return ServerSettings(
        base_url=config.base_url,
        app_id=SHOP_APP_ID,
        name="ATH Shop",
        database_url=config.database_url,
        secret_key=config.secret_key,
        admin_token=config.admin_token,
        # Attestations are always verified against the agent's published key; a development
        # setup only widens where identity documents may be fetched from (loopback, http).
        allow_loopback=config.allow_loopback,
        allow_http=config.allow_http,
        consent_signing_key=config.consent_signing_key,
        rate_limit=config.rate_limit,
        providers=[
            ProviderSettings(
                provider_id=SHOP_PROVIDER_ID,
                display_name="ATH Shop",
                categories=["shopping"],
                authorization_endpoint=f"{config.oauth_issuer}/authorize",
                token_endpoint=f"{config.oauth_issuer}/token",
                userinfo_endpoint=f"{config.oauth_issuer}/userinfo",
                client_id=config.agent_client_id,
                client_secret=config.agent_client_secret,
                scopes=list(SHOP_SCOPES),
                auto_approve=list(config.policy.auto_approve),
                review=list(config.policy.review),
                never=list(config.policy.never),
                # The story of ATH Shop: ShopBot may browse and fill the cart at once while a
                # person reviews whether it may place orders.
                approve_while_reviewing=True,
            )
        ],
    )


def create_shop_app(config: ShopConfig) -> Starlette:
    """The shop: storefront, login, cart, orders, Connected agents, ATH endpoints, ``/api``
    and the operator console at ``/admin``.

    Migrates (shop and engine) and seeds the catalogue at start-up.
    """
    db = create_database(config.database_url)
    service = ShopService(db)
    settings = server_settings(config)
    # The shop's own templates over the project's shared ones (the Connected agents table).
    env = page_templates(PackageLoader("athkit.demo.shop", "templates"))
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)
    sessions = LoginSessionStore(db, timedelta(seconds=config.session_lifetime))
    web = ShopWeb(
        service=service,
        sessions=sessions,
        login=LoginClient(
            issuer=config.oauth_issuer,
            client_id=config.web_client_id,
            client_secret=config.web_client_secret.get_secret_value(),
            redirect_uri=config.login_redirect_uri,
        ),
        templates=Jinja2Templates(env=env),
        http=http,
        cookie_name=config.cookie_name,
        secure_cookies=config.secure_cookies,
        session_max_age=config.session_lifetime,
    )

    async def logged_in_user(request: Request) -> str | None:
        # The engine's own user routes (/ath/user/...) know the user by the shop's session.
        session = await web.session(request)
        return session.user_id if session is not None else None

    app = create_native_app(
        settings,
        routes=[
            *page_routes(web),
            *api_routes(service),
            Mount("/static", StaticFiles(packages=[("athkit.demo.shop", "static")]), name="static"),
        ],
        user_authenticator=logged_in_user,
    )
    # The operator console at /admin, in the shop's database (accounts: ath console create-user).
    mount_console(app, db=db, site_name="ATH Shop")
    engine_lifespan = app.router.lifespan_context

    async def unknown_page(request: Request, exc: Exception) -> Response:
        # A person who mistypes a shop address gets a page with the way back to the shop.
        if isinstance(exc, HTTPException) and wants_html(request.headers.get("accept")):
            return status_page(exc.status_code, site="ATH Shop", links=[("Back to the shop", "/")])
        return await ath_error_handler(request, exc)

    app.add_exception_handler(HTTPException, unknown_page)

    @contextlib.asynccontextmanager
    async def lifespan(inner: Starlette) -> AsyncIterator[None]:
        # The engine's own start-up (its migrations) first, then the shop's.
        async with engine_lifespan(inner):
            try:
                await service.migrate()
                if config.seed_catalogue:
                    await service.seed()
                yield
            finally:
                await http.aclose()
                await db.dispose()

    app.router.lifespan_context = lifespan
    app.state.shop = service
    if config.mcp_endpoint:
        from athkit.demo.shop._mcp import shop_tools
        from athkit.integrations.mcp import mount_mcp

        app = mount_mcp(app, shop_tools(service))
        app.state.shop = service
    return app
