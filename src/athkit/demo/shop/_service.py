"""The shop's business rules over its tables: catalogue, carts and orders.

Rules a reviewer should find here:
- quantities are whole numbers from 1 to 99 per cart line;
- adding to the cart refuses more than is in stock right now (``OUT_OF_STOCK``);
- placing an order moves the whole cart into an order and decrements stock in ONE
  transaction: each product's stock goes down only ``WHERE stock >= quantity``, and if any line
  falls short nothing at all changes (``OUT_OF_STOCK`` naming the product); an empty cart is
  refused (``CART_EMPTY``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from athkit.demo.shop._catalogue import CATALOGUE, SeedProduct
from athkit.demo.shop._errors import ShopError
from athkit.demo.shop._tables import (
    MIGRATIONS,
    VERSION_TABLE,
    cart_items,
    order_items,
    orders,
    products,
)
from athkit.storage import run_migrations

MAX_LINE_QUANTITY = 99


def format_price(cents: int) -> str:
    """``2490`` → ``"€24.90"``."""
    return f"€{cents // 100}.{cents % 100:02d}"


def _aware(moment: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; everything we store is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Product:
    """A product of the catalogue, with its current stock."""

    id: str
    name: str
    description: str
    price_cents: int
    stock: int

    @property
    def price(self) -> str:
        """The price for people."""
        return format_price(self.price_cents)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by the API: the fields as they are."""
        return asdict(self)


@dataclass(frozen=True)
class Line:
    """One line of a cart or an order."""

    product_id: str
    name: str
    unit_price_cents: int
    quantity: int

    @property
    def subtotal_cents(self) -> int:
        """Unit price times quantity."""
        return self.unit_price_cents * self.quantity

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by the API: the fields and the subtotal."""
        return {**asdict(self), "subtotal_cents": self.subtotal_cents}


@dataclass(frozen=True)
class Cart:
    """A user's cart (prices are the catalogue's current ones)."""

    user_id: str
    lines: tuple[Line, ...]

    @property
    def total_cents(self) -> int:
        """Sum of the lines."""
        return sum(line.subtotal_cents for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by the API."""
        return {
            "items": [line.to_dict() for line in self.lines],
            "total_cents": self.total_cents,
        }


@dataclass(frozen=True)
class Order:
    """A placed order (prices frozen at the moment it was placed)."""

    id: str
    user_id: str
    lines: tuple[Line, ...]
    total_cents: int
    created_at: datetime
    placed_by: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by the API."""
        return {
            "id": self.id,
            "items": [line.to_dict() for line in self.lines],
            "total_cents": self.total_cents,
            "created_at": self.created_at.isoformat(),
            "placed_by": self.placed_by,
        }


def _check_quantity(quantity: object) -> int:
    # bool is an int in Python; `true` from a JSON body is not a quantity.
    if (
        not isinstance(quantity, int)
        or isinstance(quantity, bool)
        or not 1 <= quantity <= MAX_LINE_QUANTITY
    ):
        raise ShopError(
            "INVALID_QUANTITY",
            f"quantity must be a whole number from 1 to {MAX_LINE_QUANTITY}",
            400,
        )
    return quantity


def _product_not_found(product_id: str) -> ShopError:
    return ShopError(
        "PRODUCT_NOT_FOUND", "no product with this id", 404, {"product_id": product_id[:64]}
    )


class ShopService:
    """The shop's operations, each one transaction on the given async engine."""

    def __init__(self, db: AsyncEngine) -> None:
        self._engine = db

    async def migrate(self) -> None:
        """Create or upgrade the shop's tables."""
        await run_migrations(self._engine, MIGRATIONS, VERSION_TABLE)

    async def seed(self, catalogue: Sequence[SeedProduct] = CATALOGUE) -> int:
        """Stock the catalogue if the shop has no products yet; returns how many were added."""
        async with self._engine.begin() as conn:
            count = (await conn.execute(select(func.count()).select_from(products))).scalar_one()
            if count:
                return 0
            await conn.execute(
                insert(products),
                [
                    {
                        "id": p.id,
                        "name": p.name,
                        "description": p.description,
                        "price_cents": p.price_cents,
                        "stock": p.stock,
                    }
                    for p in catalogue
                ],
            )
        return len(catalogue)

    async def list_products(self) -> list[Product]:
        """The whole catalogue, by name."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(products).order_by(products.c.name))).all()
        return [Product(**row._mapping) for row in rows]

    async def get_product(self, product_id: str) -> Product:
        """One product, or ``PRODUCT_NOT_FOUND``."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(products).where(products.c.id == product_id))
            ).one_or_none()
        if row is None:
            raise _product_not_found(product_id)
        return Product(**row._mapping)

    async def get_cart(self, user_id: str) -> Cart:
        """The user's cart (possibly empty)."""
        async with self._engine.connect() as conn:
            return await self._read_cart(conn, user_id)

    async def add_to_cart(self, user_id: str, product_id: str, quantity: object = 1) -> Cart:
        """Add ``quantity`` of a product to the user's cart; returns the cart."""
        quantity = _check_quantity(quantity)
        async with self._engine.begin() as conn:
            # The write comes first so that SQLite takes its write lock before we read:
            # two concurrent adds then see each other's lines instead of colliding.
            bumped = await conn.execute(
                update(cart_items)
                .where(cart_items.c.user_id == user_id, cart_items.c.product_id == product_id)
                .values(quantity=cart_items.c.quantity + quantity)
            )
            stock = (
                await conn.execute(select(products.c.stock).where(products.c.id == product_id))
            ).scalar_one_or_none()
            if stock is None:
                raise _product_not_found(product_id)
            if bumped.rowcount == 0:
                await conn.execute(
                    insert(cart_items).values(
                        user_id=user_id,
                        product_id=product_id,
                        quantity=quantity,
                        added_at=datetime.now(UTC),
                    )
                )
            in_cart = (
                await conn.execute(
                    select(cart_items.c.quantity).where(
                        cart_items.c.user_id == user_id, cart_items.c.product_id == product_id
                    )
                )
            ).scalar_one()
            if in_cart > MAX_LINE_QUANTITY:
                raise ShopError(
                    "INVALID_QUANTITY",
                    f"at most {MAX_LINE_QUANTITY} of one product per cart",
                    400,
                    {"product_id": product_id, "in_cart": in_cart - quantity},
                )
            if in_cart > stock:
                raise ShopError(
                    "OUT_OF_STOCK",
                    f"only {stock} in stock, and the cart would hold {in_cart}",
                    409,
                    {"product_id": product_id, "available": stock},
                )
            return await self._read_cart(conn, user_id)

    async def remove_from_cart(self, user_id: str, product_id: str) -> Cart:
        """Drop a product's line from the user's cart; returns the cart."""
        async with self._engine.begin() as conn:
            removed = await conn.execute(
                delete(cart_items).where(
                    cart_items.c.user_id == user_id, cart_items.c.product_id == product_id
                )
            )
            if removed.rowcount == 0:
                raise ShopError(
                    "NOT_IN_CART",
                    "this product is not in the cart",
                    404,
                    {"product_id": product_id[:64]},
                )
            return await self._read_cart(conn, user_id)

    async def clear_cart(self, user_id: str) -> Cart:
        """Empty the user's cart."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(cart_items).where(cart_items.c.user_id == user_id))
            return await self._read_cart(conn, user_id)

    async def place_order(self, user_id: str, placed_by: str) -> Order:
        """Turn the user's cart into an order, decrementing stock, all or nothing."""
        async with self._engine.begin() as conn:
            # A write first: it locks this user's cart rows (PostgreSQL) or takes the database
            # write lock (SQLite), so the lines we read next cannot change under us.
            touched = await conn.execute(
                update(cart_items)
                .where(cart_items.c.user_id == user_id)
                .values(quantity=cart_items.c.quantity)
            )
            if touched.rowcount == 0:
                raise ShopError("CART_EMPTY", "the cart is empty: add a product first", 409)
            cart = await self._read_cart(conn, user_id)
            for line in cart.lines:
                decremented = await conn.execute(
                    update(products)
                    .where(products.c.id == line.product_id, products.c.stock >= line.quantity)
                    .values(stock=products.c.stock - line.quantity)
                )
                if decremented.rowcount != 1:
                    available = (
                        await conn.execute(
                            select(products.c.stock).where(products.c.id == line.product_id)
                        )
                    ).scalar_one()
                    # Raising rolls the whole transaction back: no stock moved, cart intact.
                    raise ShopError(
                        "OUT_OF_STOCK",
                        f"{line.name}: {available} in stock, {line.quantity} in the cart",
                        409,
                        {
                            "product_id": line.product_id,
                            "available": available,
                            "requested": line.quantity,
                        },
                    )
            order = Order(
                id=secrets.token_hex(8),
                user_id=user_id,
                lines=cart.lines,
                total_cents=cart.total_cents,
                created_at=datetime.now(UTC),
                placed_by=placed_by,
            )
            await conn.execute(
                insert(orders).values(
                    id=order.id,
                    user_id=user_id,
                    total_cents=order.total_cents,
                    created_at=order.created_at,
                    placed_by=placed_by,
                )
            )
            await conn.execute(
                insert(order_items),
                [
                    {
                        "order_id": order.id,
                        "product_id": line.product_id,
                        "name": line.name,
                        "unit_price_cents": line.unit_price_cents,
                        "quantity": line.quantity,
                    }
                    for line in cart.lines
                ],
            )
            await conn.execute(delete(cart_items).where(cart_items.c.user_id == user_id))
        return order

    async def list_orders(self, user_id: str) -> list[Order]:
        """The user's orders, newest first."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(orders)
                    .where(orders.c.user_id == user_id)
                    .order_by(orders.c.created_at.desc())
                )
            ).all()
            return [await self._order_from_row(conn, row._mapping) for row in rows]

    async def get_order(self, user_id: str, order_id: str) -> Order:
        """One of the user's orders; another user's order is simply not found."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(orders).where(orders.c.id == order_id, orders.c.user_id == user_id)
                )
            ).one_or_none()
            if row is None:
                raise ShopError(
                    "ORDER_NOT_FOUND", "no such order", 404, {"order_id": order_id[:64]}
                )
            return await self._order_from_row(conn, row._mapping)

    @staticmethod
    async def _read_cart(conn: AsyncConnection, user_id: str) -> Cart:
        rows = (
            await conn.execute(
                select(
                    cart_items.c.product_id,
                    products.c.name,
                    products.c.price_cents.label("unit_price_cents"),
                    cart_items.c.quantity,
                )
                .join(products, products.c.id == cart_items.c.product_id)
                .where(cart_items.c.user_id == user_id)
                .order_by(cart_items.c.added_at, cart_items.c.product_id)
            )
        ).all()
        return Cart(user_id=user_id, lines=_lines(rows))

    @staticmethod
    async def _order_from_row(conn: AsyncConnection, row: Any) -> Order:
        lines = (
            await conn.execute(
                select(order_items)
                .where(order_items.c.order_id == row["id"])
                .order_by(order_items.c.product_id)
            )
        ).all()
        return Order(
            id=row["id"],
            user_id=row["user_id"],
            lines=_lines(lines),
            total_cents=row["total_cents"],
            created_at=_aware(row["created_at"]),
            placed_by=row["placed_by"],
        )


def _lines(rows: Iterable[Any]) -> tuple[Line, ...]:
    """Cart or order lines from rows with ``product_id``, ``name``, ``unit_price_cents`` and
    ``quantity`` columns."""
    return tuple(
        Line(
            product_id=row.product_id,
            name=row.name,
            unit_price_cents=row.unit_price_cents,
            quantity=row.quantity,
        )
        for row in rows
    )
