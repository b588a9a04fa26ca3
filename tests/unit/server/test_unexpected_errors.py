"""A bug in a handler mounted on a native app answers ATH §7 ``INTERNAL_ERROR`` JSON (or the 500
page for a browser), never Starlette's plain-text "Internal Server Error" and no traceback."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from athkit.server import ServerSettings, create_native_app, memory_stores
from tests.unit.server.helpers import BASE, FakeProvider, KeyringVerifier, make_world


async def _broken(_request: Request) -> Response:
    raise RuntimeError("secret detail that must not leak")


async def test_a_handler_bug_is_an_internal_error_in_the_documented_shape() -> None:
    w = make_world()
    settings = ServerSettings(
        base_url=BASE, secret_key="k" * 40, providers=w.engine.settings.providers
    )
    app = create_native_app(
        settings,
        verifier=KeyringVerifier(w.clock),
        stores=memory_stores(),
        oauth=FakeProvider(),
        clock=w.clock,
        routes=[Route("/broken", _broken)],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        api = await client.get("/broken")
        page = await client.get("/broken", headers={"Accept": "text/html"})
    assert api.status_code == 500
    assert api.json()["code"] == "INTERNAL_ERROR"
    assert "secret detail" not in api.text
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "secret detail" not in page.text and "Traceback" not in page.text
