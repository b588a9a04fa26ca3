"""The shop's SQL schema: its own MetaData, migrated by ``athkit.demo.shop:migrations``.

The version table is ``shop_alembic_version``, so the shop can share a database with the
engine and the OAuth server without their migrations stepping on each other.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
)

from athkit.storage import new_metadata

VERSION_TABLE = "shop_alembic_version"
MIGRATIONS = "athkit.demo.shop:migrations"

metadata = new_metadata()

products = Table(
    "shop_products",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("stock", Integer, nullable=False),
    # The database itself refuses negative stock: the last line of defence behind the
    # conditional UPDATE in the service.
    CheckConstraint("stock >= 0", name="stock_not_negative"),
    CheckConstraint("price_cents >= 0", name="price_not_negative"),
)

cart_items = Table(
    "shop_cart_items",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("product_id", String(64), ForeignKey("shop_products.id"), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

orders = Table(
    "shop_orders",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(255), nullable=False, index=True),
    Column("total_cents", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Who placed it: "web" for the storefront, the agent_id for an ATH agent.
    Column("placed_by", String(2048), nullable=False),
)

order_items = Table(
    "shop_order_items",
    metadata,
    Column("order_id", String(32), ForeignKey("shop_orders.id"), primary_key=True),
    Column("product_id", String(64), ForeignKey("shop_products.id"), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("unit_price_cents", Integer, nullable=False),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

web_sessions = Table(
    "shop_web_sessions",
    metadata,
    # SHA-256 of the cookie value: a leaked database does not yield live sessions.
    Column("id_hash", String(64), primary_key=True),
    Column("csrf_token", String(64), nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("user_name", String(255), nullable=True),
    Column("login_state", String(128), nullable=True),
    Column("login_verifier", String(128), nullable=True),
    Column("login_next", String(512), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)
