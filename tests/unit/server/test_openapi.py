"""``/ath/openapi.json`` describes exactly the routes the service serves, and every schema it
refers to is in it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.requests import Request
from starlette.routing import Route

from athkit.server import ATHEngine, ManualClock, ServerSettings, create_ath_routes, memory_stores
from tests.unit.server.helpers import BASE, FakeProvider, KeyringVerifier, provider_settings


def _engine(admin_token: str | None) -> ATHEngine:
    clock = ManualClock(1_800_000_000)
    settings = ServerSettings(
        base_url=BASE,
        secret_key="k" * 40,
        admin_token=admin_token,
        providers=[provider_settings()],
    )
    return ATHEngine(
        settings,
        stores=memory_stores(),
        verifier=KeyringVerifier(clock),
        oauth=FakeProvider(),
        clock=clock,
    )


async def _someone(_request: Request) -> str | None:
    return "user-1"


async def _document(routes: list[Any]) -> dict[str, Any]:
    (endpoint,) = [r.endpoint for r in routes if getattr(r, "path", "") == "/ath/openapi.json"]
    response = await endpoint(None)
    document: dict[str, Any] = json.loads(response.body)
    return document


@pytest.mark.parametrize("admin_token", [None, "a" * 40])
@pytest.mark.parametrize("with_users", [False, True])
async def test_the_document_lists_every_served_route_and_nothing_else(
    admin_token: str | None, with_users: bool
) -> None:
    routes = create_ath_routes(
        _engine(admin_token), user_authenticator=_someone if with_users else None
    )
    document = await _document(routes)
    served = {
        (route.path, method.lower())
        for route in routes
        if isinstance(route, Route) and route.path != "/ath/openapi.json"
        for method in route.methods or ()
        if method != "HEAD"
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert described == served
    assert (("/ath/user/revoke", "post") in described) == with_users
    assert any(p.startswith("/ath/admin/") for p, _ in described) == (admin_token is not None)


async def test_every_reference_resolves_and_every_schema_is_used() -> None:
    routes = create_ath_routes(_engine("a" * 40), user_authenticator=_someone)
    document = await _document(routes)
    text = json.dumps(document["paths"]) + json.dumps(document["components"]["schemas"])
    referenced = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    schemas = set(document["components"]["schemas"])
    assert referenced <= schemas
    top_level = {part.split('"')[0] for part in json.dumps(document["paths"]).split("schemas/")[1:]}
    assert {"TokenRequest", "UserRevokeRequest", "ScopesRequest", "ErrorResponse"} <= top_level
    assert schemas <= referenced  # nothing listed that no path or schema uses
