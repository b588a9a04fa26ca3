"""The seeded catalogue: a dozen products with prices in cents and stock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedProduct:
    """One product as first stocked."""

    id: str
    name: str
    description: str
    price_cents: int
    stock: int


CATALOGUE: tuple[SeedProduct, ...] = (
    SeedProduct("espresso-beans", "Espresso beans, 1 kg", "Dark roast, notes of cocoa.", 2490, 40),
    SeedProduct("pour-over-kettle", "Pour-over kettle", "Gooseneck, 1 l, stainless.", 3900, 12),
    SeedProduct("ceramic-mug", "Ceramic mug", "Hand-glazed, 350 ml.", 1450, 60),
    SeedProduct("hand-grinder", "Hand grinder", "Conical burrs, 40 settings.", 8900, 8),
    SeedProduct("paper-filters", "Paper filters (100)", "Unbleached, size 02.", 650, 200),
    SeedProduct("milk-frother", "Milk frother", "Battery powered whisk.", 1990, 25),
    SeedProduct("tea-sampler", "Loose-leaf tea sampler", "Six teas, 50 g each.", 2750, 15),
    SeedProduct("travel-tumbler", "Travel tumbler", "Double-walled, 470 ml.", 2400, 30),
    SeedProduct("coffee-scale", "Coffee scale", "0.1 g resolution, with timer.", 3450, 10),
    SeedProduct("cold-brew-jar", "Cold brew jar", "1.5 l glass with mesh filter.", 2990, 18),
    SeedProduct("barista-apron", "Barista apron", "Waxed canvas, leather straps.", 4500, 6),
    SeedProduct("limited-grinder", "Limited edition grinder", "Walnut body. Sold out.", 24900, 0),
)
