"""The shop's JSON API for agents, under ``/api``, each route guarded by ``require_scopes``.

    GET    /api/products               products:read
    GET    /api/products/{id}          products:read
    GET    /api/cart                   cart:read
    POST   /api/cart/items             cart:write   {"product_id", "quantity"}
    DELETE /api/cart/items             cart:write   (empty the cart)
    DELETE /api/cart/items/{id}        cart:write
    GET    /api/orders                 orders:read
    GET    /api/orders/{id}            orders:read
    POST   /api/orders                 orders:write (the cart becomes an order)

The user is the one the token was issued for; an order records the agent that placed it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from athkit.demo.shop._errors import ShopError
from athkit.demo.shop._service import ShopService
from athkit.server import ATHPrincipal, read_json_object, require_scopes

_MAX_BODY = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store"}

_Endpoint = Callable[[Request], Awaitable[Response]]


def _invalid(message: str, field: str | None = None) -> ShopError:
    return ShopError("INVALID_REQUEST", message, 400, {"field": field} if field else None)


async def _json_body(request: Request) -> dict[str, Any]:
    # The engine's bounded reader: 413 too large, 415 not JSON, 400 malformed or hostile JSON,
    # each an ATH-shaped INVALID_REQUEST (rendered by the app's ATHError handler).
    data: dict[str, Any] = await read_json_object(request, _MAX_BODY)
    return data


def _principal(request: Request) -> ATHPrincipal:
    principal = request.state.ath
    assert isinstance(principal, ATHPrincipal)
    return principal


def _user(request: Request) -> str:
    return _principal(request).user_id


def _answer(result: Any, status: int = 200) -> Response:
    """``result.to_dict()`` as the JSON answer; nothing the API answers may be cached."""
    return JSONResponse(result.to_dict(), status_code=status, headers=_NO_STORE)


def _shop_errors(handler: _Endpoint) -> _Endpoint:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ShopError as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.status, headers=_NO_STORE)

    return wrapped


def api_routes(service: ShopService, prefix: str = "/api") -> list[Route]:
    """The agent-facing API, each route demanding its scope of the caller's ATH token."""
    routes: list[Route] = []

    def route(method: str, path: str, scope: str) -> Callable[[_Endpoint], _Endpoint]:
        """Serve the decorated handler at ``prefix + path``, to tokens holding ``scope``."""

        def add(handler: _Endpoint) -> _Endpoint:
            guarded = require_scopes(scope)(_shop_errors(handler))
            routes.append(Route(prefix + path, guarded, methods=[method]))
            return handler

        return add

    @route("GET", "/products", "products:read")
    async def list_products(request: Request) -> Response:
        products = await service.list_products()
        return JSONResponse({"products": [p.to_dict() for p in products]}, headers=_NO_STORE)

    @route("GET", "/products/{product_id}", "products:read")
    async def get_product(request: Request) -> Response:
        product = await service.get_product(request.path_params["product_id"])
        return _answer(product)

    @route("GET", "/cart", "cart:read")
    async def get_cart(request: Request) -> Response:
        cart = await service.get_cart(_user(request))
        return _answer(cart)

    @route("POST", "/cart/items", "cart:write")
    async def add_item(request: Request) -> Response:
        data = await _json_body(request)
        product_id = data.get("product_id")
        if not isinstance(product_id, str) or not product_id:
            raise _invalid("product_id must be a product's id", "product_id")
        cart = await service.add_to_cart(_user(request), product_id[:64], data.get("quantity", 1))
        return _answer(cart, 201)

    @route("DELETE", "/cart/items", "cart:write")
    async def clear_cart(request: Request) -> Response:
        cart = await service.clear_cart(_user(request))
        return _answer(cart)

    @route("DELETE", "/cart/items/{product_id}", "cart:write")
    async def remove_item(request: Request) -> Response:
        cart = await service.remove_from_cart(_user(request), request.path_params["product_id"])
        return _answer(cart)

    @route("GET", "/orders", "orders:read")
    async def list_orders(request: Request) -> Response:
        orders = await service.list_orders(_user(request))
        return JSONResponse({"orders": [o.to_dict() for o in orders]}, headers=_NO_STORE)

    @route("GET", "/orders/{order_id}", "orders:read")
    async def get_order(request: Request) -> Response:
        order = await service.get_order(_user(request), request.path_params["order_id"])
        return _answer(order)

    @route("POST", "/orders", "orders:write")
    async def place_order(request: Request) -> Response:
        principal = _principal(request)
        order = await service.place_order(principal.user_id, placed_by=principal.agent_id)
        return _answer(order, 201)

    return routes
