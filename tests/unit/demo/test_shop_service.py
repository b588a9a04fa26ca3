"""The ATH Shop's business rules, on a real SQLite file migrated by Alembic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from athkit.demo.shop import CATALOGUE, SeedProduct, ShopError, ShopService, format_price
from athkit.storage import create_database


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[ShopService]:
    engine = create_database(f"sqlite:///{tmp_path / 'shop.db'}")
    service = ShopService(engine)
    await service.migrate()
    await service.seed()
    yield service
    await engine.dispose()


async def test_migrations_create_the_tables_under_their_own_version_table(
    tmp_path: Path,
) -> None:
    engine = create_database(f"sqlite:///{tmp_path / 'm.db'}")
    service = ShopService(engine)
    await service.migrate()
    await service.migrate()  # idempotent
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        version = (await conn.execute(text("SELECT version_num FROM shop_alembic_version"))).all()
    await engine.dispose()
    assert {
        "shop_products",
        "shop_cart_items",
        "shop_orders",
        "shop_order_items",
        "shop_web_sessions",
    } <= names
    assert version == [("shop_0002",)]


async def test_seed_stocks_a_dozen_products_once(shop: ShopService) -> None:
    assert await shop.seed() == 0
    listed = await shop.list_products()
    assert len(listed) == len(CATALOGUE) == 12
    assert {p.id for p in listed} == {p.id for p in CATALOGUE}
    assert all(p.price_cents > 0 for p in listed)
    assert [p.name for p in listed] == sorted(p.name for p in listed)


async def test_unknown_product_is_not_found(shop: ShopService) -> None:
    with pytest.raises(ShopError) as info:
        await shop.get_product("nope")
    assert (info.value.code, info.value.status) == ("PRODUCT_NOT_FOUND", 404)
    with pytest.raises(ShopError) as info:
        await shop.add_to_cart("alice", "nope", 1)
    assert info.value.code == "PRODUCT_NOT_FOUND"
    assert (await shop.get_cart("alice")).lines == ()


async def test_cart_accumulates_lines_and_totals(shop: ShopService) -> None:
    await shop.add_to_cart("alice", "ceramic-mug", 2)
    await shop.add_to_cart("alice", "paper-filters", 1)
    cart = await shop.add_to_cart("alice", "ceramic-mug", 1)
    assert [(line.product_id, line.quantity) for line in cart.lines] == [
        ("ceramic-mug", 3),
        ("paper-filters", 1),
    ]
    assert cart.total_cents == 3 * 1450 + 650
    assert (await shop.get_cart("bob")).lines == ()  # carts are per user


@pytest.mark.parametrize("quantity", [0, -1, 100, 1.5, "2", True, None])
async def test_bad_quantities_are_refused(shop: ShopService, quantity: object) -> None:
    with pytest.raises(ShopError) as info:
        await shop.add_to_cart("alice", "ceramic-mug", quantity)
    assert (info.value.code, info.value.status) == ("INVALID_QUANTITY", 400)


async def test_adding_more_than_in_stock_is_refused_and_changes_nothing(
    shop: ShopService,
) -> None:
    await shop.add_to_cart("alice", "barista-apron", 4)
    with pytest.raises(ShopError) as info:
        await shop.add_to_cart("alice", "barista-apron", 3)  # 7 > 6 in stock
    assert info.value.code == "OUT_OF_STOCK"
    assert info.value.details["available"] == 6
    cart = await shop.get_cart("alice")
    assert [(line.product_id, line.quantity) for line in cart.lines] == [("barista-apron", 4)]
    with pytest.raises(ShopError) as info:
        await shop.add_to_cart("alice", "limited-grinder", 1)
    assert info.value.code == "OUT_OF_STOCK"


async def test_remove_and_clear(shop: ShopService) -> None:
    await shop.add_to_cart("alice", "ceramic-mug", 1)
    await shop.add_to_cart("alice", "tea-sampler", 1)
    cart = await shop.remove_from_cart("alice", "ceramic-mug")
    assert [line.product_id for line in cart.lines] == ["tea-sampler"]
    with pytest.raises(ShopError) as info:
        await shop.remove_from_cart("alice", "ceramic-mug")
    assert (info.value.code, info.value.status) == ("NOT_IN_CART", 404)
    assert (await shop.clear_cart("alice")).lines == ()


async def test_placing_an_order_moves_the_cart_and_decrements_stock(shop: ShopService) -> None:
    await shop.add_to_cart("alice", "hand-grinder", 2)
    await shop.add_to_cart("alice", "paper-filters", 3)
    order = await shop.place_order("alice", placed_by="https://bot.example/.well-known/agent.json")
    assert order.total_cents == 2 * 8900 + 3 * 650
    assert {(line.product_id, line.quantity) for line in order.lines} == {
        ("hand-grinder", 2),
        ("paper-filters", 3),
    }
    assert (await shop.get_cart("alice")).lines == ()
    assert (await shop.get_product("hand-grinder")).stock == 8 - 2
    assert (await shop.get_product("paper-filters")).stock == 200 - 3
    assert [o.id for o in await shop.list_orders("alice")] == [order.id]
    fetched = await shop.get_order("alice", order.id)
    assert fetched.placed_by == "https://bot.example/.well-known/agent.json"
    assert fetched.created_at.tzinfo is not None
    with pytest.raises(ShopError) as info:
        await shop.get_order("bob", order.id)  # another user's order does not exist for bob
    assert info.value.code == "ORDER_NOT_FOUND"


async def test_an_empty_cart_cannot_be_ordered(shop: ShopService) -> None:
    with pytest.raises(ShopError) as info:
        await shop.place_order("alice", placed_by="web")
    assert (info.value.code, info.value.status) == ("CART_EMPTY", 409)
    assert await shop.list_orders("alice") == []


async def test_out_of_stock_at_order_time_rolls_everything_back(shop: ShopService) -> None:
    # Both want the last aprons; bob orders first, alice's order must change nothing.
    await shop.add_to_cart("alice", "ceramic-mug", 2)
    await shop.add_to_cart("alice", "barista-apron", 4)
    await shop.add_to_cart("bob", "barista-apron", 3)
    await shop.place_order("bob", placed_by="web")
    with pytest.raises(ShopError) as info:
        await shop.place_order("alice", placed_by="web")
    assert info.value.code == "OUT_OF_STOCK"
    assert info.value.details == {"product_id": "barista-apron", "available": 3, "requested": 4}
    assert (await shop.get_product("ceramic-mug")).stock == 60  # the mug line was rolled back
    assert (await shop.get_product("barista-apron")).stock == 3
    assert len((await shop.get_cart("alice")).lines) == 2
    assert await shop.list_orders("alice") == []


async def test_concurrent_orders_never_oversell(tmp_path: Path) -> None:
    engine = create_database(f"sqlite:///{tmp_path / 'race.db'}")
    service = ShopService(engine)
    await service.migrate()
    await service.seed([SeedProduct("last-one", "Last one", "Only three left.", 1000, 3)])
    buyers = [f"user-{i}" for i in range(8)]
    for buyer in buyers:
        await service.add_to_cart(buyer, "last-one", 1)
    results = await asyncio.gather(
        *(service.place_order(b, placed_by="web") for b in buyers), return_exceptions=True
    )
    placed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, ShopError)]
    assert len(placed) == 3
    assert len(refused) == 5
    assert all(r.code == "OUT_OF_STOCK" for r in refused)
    assert (await service.get_product("last-one")).stock == 0
    await engine.dispose()


def test_format_price() -> None:
    assert format_price(2490) == "€24.90"
    assert format_price(5) == "€0.05"
