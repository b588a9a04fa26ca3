"""``create_shop_app``: the ATH Shop as one Starlette application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from athkit.demo.shop._config import ShopConfig
from athkit.demo.shop._login import LoginClient
from athkit.demo.shop._pages import ShopWeb, page_routes
from athkit.demo.shop._service import ShopService
from athkit.demo.shop._sessions import SessionStore
from athkit.storage import create_engine


def create_shop_app(config: ShopConfig) -> Starlette:
    """The shop: storefront, login, cart and orders; migrates and seeds at start-up."""
    engine = create_engine(config.database_url)
    service = ShopService(engine)
    env = Environment(
        loader=PackageLoader("athkit.demo.shop", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)
    web = ShopWeb(
        service=service,
        sessions=SessionStore(engine, timedelta(seconds=config.session_lifetime)),
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

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await service.migrate()
        if config.seed_catalogue:
            await service.seed()
        try:
            yield
        finally:
            await http.aclose()
            await engine.dispose()

    async def not_found(request: Request, _exc: Exception) -> Response:
        session = await web.session(request)
        return web.message(request, session, "Not found", "There is no such page.", 404)

    app = Starlette(
        routes=[
            *page_routes(web),
            Mount("/static", StaticFiles(packages=[("athkit.demo.shop", "static")]), name="static"),
        ],
        lifespan=lifespan,
        exception_handlers={404: not_found},
    )
    app.state.shop = service
    return app
