"""The ATH Shop: a small e-commerce app that adopts ATH natively.

Its own domain (catalogue, carts, orders) lives in ``ShopService``; the web app (storefront,
login through the shop's OAuth server, the "Connected agents" page and the ATH-protected
``/api``) is built by ``create_shop_app``.
"""

from athkit.demo.shop._app import create_shop_app
from athkit.demo.shop._catalogue import CATALOGUE, SeedProduct
from athkit.demo.shop._config import (
    SHOP_APP_ID,
    SHOP_PROVIDER_ID,
    SHOP_SCOPE_DESCRIPTIONS,
    SHOP_SCOPES,
    ShopConfig,
    ShopPolicy,
)
from athkit.demo.shop._errors import ShopError
from athkit.demo.shop._service import (
    MAX_LINE_QUANTITY,
    Cart,
    Line,
    Order,
    Product,
    ShopService,
    format_price,
)
from athkit.demo.shop._tables import metadata

__all__ = [
    "CATALOGUE",
    "MAX_LINE_QUANTITY",
    "SHOP_APP_ID",
    "SHOP_PROVIDER_ID",
    "SHOP_SCOPES",
    "SHOP_SCOPE_DESCRIPTIONS",
    "Cart",
    "Line",
    "Order",
    "Product",
    "SeedProduct",
    "ShopConfig",
    "ShopError",
    "ShopPolicy",
    "ShopService",
    "create_shop_app",
    "format_price",
    "metadata",
]
