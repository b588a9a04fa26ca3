"""The shop's schema: products, cart lines, orders and order lines.

Revision ID: shop_0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "shop_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_products",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.CheckConstraint("stock >= 0", name="ck_shop_products_stock_not_negative"),
        sa.CheckConstraint("price_cents >= 0", name="ck_shop_products_price_not_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_shop_products"),
    )
    op.create_table(
        "shop_cart_items",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_shop_cart_items_quantity_positive"),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["shop_products.id"],
            name="fk_shop_cart_items_product_id_shop_products",
        ),
        sa.PrimaryKeyConstraint("user_id", "product_id", name="pk_shop_cart_items"),
    )
    op.create_table(
        "shop_orders",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_by", sa.String(2048), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shop_orders"),
    )
    op.create_index("ix_shop_orders_user_id", "shop_orders", ["user_id"])
    op.create_table(
        "shop_order_items",
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_shop_order_items_quantity_positive"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["shop_orders.id"], name="fk_shop_order_items_order_id_shop_orders"
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["shop_products.id"],
            name="fk_shop_order_items_product_id_shop_products",
        ),
        sa.PrimaryKeyConstraint("order_id", "product_id", name="pk_shop_order_items"),
    )


def downgrade() -> None:
    op.drop_table("shop_order_items")
    op.drop_index("ix_shop_orders_user_id", table_name="shop_orders")
    op.drop_table("shop_orders")
    op.drop_table("shop_cart_items")
    op.drop_table("shop_products")
