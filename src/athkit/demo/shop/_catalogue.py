"""The seeded catalogue: a dozen products with prices in cents and stock, kept as data in the
packaged ``catalogue.json`` beside this module and read once, when the module is imported."""

from __future__ import annotations

import importlib.resources
import json
import typing
from dataclasses import dataclass

CATALOGUE_FILE = "catalogue.json"
"""The seed catalogue's file name inside the ``athkit.demo.shop`` package."""


@dataclass(frozen=True)
class SeedProduct:
    """One product as first stocked."""

    id: str
    name: str
    description: str
    price_cents: int
    stock: int


class CatalogueError(ValueError):
    """The seed catalogue's data is not a list of well-formed products."""


# Field name -> its exact Python type, in declaration order: the shape every entry must have.
_FIELDS: dict[str, type] = typing.get_type_hints(SeedProduct)


def parse_catalogue(raw: object, source: str = CATALOGUE_FILE) -> tuple[SeedProduct, ...]:
    """Build the products of decoded catalogue data (a list of objects with the SeedProduct
    field names), checking every entry; a missing, unknown or wrongly typed field, an empty id,
    a price that is not positive, a negative stock or a repeated id raises ``CatalogueError``
    naming the entry."""
    if not isinstance(raw, list):
        raise CatalogueError(f"{source}: expected a list of products, got {type(raw).__name__}")
    products: list[SeedProduct] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        where = f"{source} entry {index}"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
            where += f" ({entry['id']!r})"
        product = _product(entry, where)
        if product.id in seen:
            raise CatalogueError(f"{where}: id {product.id!r} is already used by another entry")
        seen.add(product.id)
        products.append(product)
    return tuple(products)


def _product(entry: object, where: str) -> SeedProduct:
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: expected an object, got {type(entry).__name__}")
    missing = [name for name in _FIELDS if name not in entry]
    if missing:
        raise CatalogueError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(str(name) for name in entry if name not in _FIELDS)
    if unknown:
        raise CatalogueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for name, kind in _FIELDS.items():
        # An exact type test: JSON true/false decode to bool, which isinstance counts as int.
        if type(entry[name]) is not kind:
            raise CatalogueError(f"{where}: {name} must be {kind.__name__}, got {entry[name]!r}")
    product = SeedProduct(**entry)
    if not product.id:
        raise CatalogueError(f"{where}: id must not be empty")
    if product.price_cents <= 0:
        raise CatalogueError(f"{where}: price_cents must be positive, got {product.price_cents}")
    if product.stock < 0:
        raise CatalogueError(f"{where}: stock must not be negative, got {product.stock}")
    return product


def load_catalogue() -> tuple[SeedProduct, ...]:
    """Read and check the packaged seed catalogue (``CatalogueError`` if it is malformed)."""
    text = (
        importlib.resources.files("athkit.demo.shop")
        .joinpath(CATALOGUE_FILE)
        .read_text(encoding="utf-8")
    )
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"{CATALOGUE_FILE}: not valid JSON ({exc})") from exc
    return parse_catalogue(raw)


CATALOGUE: tuple[SeedProduct, ...] = load_catalogue()
"""The products the shop is stocked with when it has none."""
