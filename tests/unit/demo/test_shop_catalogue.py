"""The ATH Shop's seed catalogue: read from the packaged catalogue.json, checked on load, and
served as it is by a freshly seeded shop."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from athkit.demo.shop import CATALOGUE, ShopService
from athkit.demo.shop._catalogue import CatalogueError, parse_catalogue
from athkit.storage import create_database

GOOD = {
    "id": "mug",
    "name": "Mug",
    "description": "Holds coffee.",
    "price_cents": 1200,
    "stock": 4,
}


async def test_the_loaded_catalogue_is_what_the_shop_serves(tmp_path: Path) -> None:
    engine = create_database(f"sqlite:///{tmp_path / 'shop.db'}")
    service = ShopService(engine)
    await service.migrate()
    assert await service.seed() == len(CATALOGUE) == 12
    sold_out = await service.get_product("limited-grinder")
    listed = await service.list_products()
    await engine.dispose()

    as_rows = sorted((dataclasses.asdict(p) for p in CATALOGUE), key=lambda r: r["id"])
    assert sorted((dataclasses.asdict(p) for p in listed), key=lambda r: r["id"]) == as_rows
    ids = [p.id for p in CATALOGUE]
    assert len(set(ids)) == len(ids)
    assert all(type(p.price_cents) is int and p.price_cents > 0 for p in CATALOGUE)
    assert all(type(p.stock) is int and p.stock >= 0 for p in CATALOGUE)
    assert sold_out.stock == 0
    assert [p.id for p in CATALOGUE if p.stock == 0] == ["limited-grinder"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({k: v for k, v in GOOD.items() if k != "stock"}, "missing field(s) stock"),
        ({**GOOD, "price_cents": "1200"}, "price_cents must be int, got '1200'"),
        ({**GOOD, "stock": True}, "stock must be int, got True"),
        ({**GOOD, "name": None}, "name must be str, got None"),
        ({**GOOD, "colour": "blue"}, "unknown field(s) colour"),
        ({**GOOD, "price_cents": 0}, "price_cents must be positive, got 0"),
        ({**GOOD, "stock": -1}, "stock must not be negative, got -1"),
        ({**GOOD, "id": ""}, "id must not be empty"),
    ],
)
def test_a_malformed_entry_is_refused_naming_it(entry: dict[str, object], message: str) -> None:
    other = {**GOOD, "id": "other"}
    with pytest.raises(CatalogueError) as info:
        parse_catalogue([other, entry], "catalogue.json")
    where = "catalogue.json entry 1" + (f" ({entry['id']!r})" if entry.get("id") else "")
    assert str(info.value).startswith(where + ": ")
    assert str(info.value).endswith(message)


def test_a_repeated_id_or_a_non_object_is_refused() -> None:
    with pytest.raises(CatalogueError, match=re.escape("entry 1 ('mug'): id 'mug' is already")):
        parse_catalogue([GOOD, GOOD])
    with pytest.raises(CatalogueError, match=re.escape("entry 0: expected an object, got str")):
        parse_catalogue(["mug"])
    with pytest.raises(CatalogueError, match="expected a list of products, got dict"):
        parse_catalogue(GOOD)
