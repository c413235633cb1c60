"""The catalog seed: the same products for tests, the local stack and deploy."""

from __future__ import annotations

from chalicelib.domain import Product

SEED: tuple[Product, ...] = (
    Product("espresso-cup", "Espresso cup", "Double-walled glass, 80 ml.", 1200,
            "espresso-cup.svg"),
    Product("pour-over", "Pour-over dripper", "Ceramic cone for one to two cups.",
            2450, "pour-over.svg"),
    Product("kettle", "Gooseneck kettle", "0.9 l, stainless steel, slow pour.",
            5900, "kettle.svg"),
    Product("grinder", "Burr grinder", "Hand grinder with 40 click settings.",
            8900, "grinder.svg"),
    Product("beans-house", "House blend, 250 g", "Chocolate, hazelnut, a little cherry.",
            1350, "beans.svg"),
    Product("beans-decaf", "Decaf, 250 g", "Swiss-water decaf from Colombia.",
            1490, "beans.svg"),
    Product("filters", "Paper filters x100", "Unbleached, fits size 02 drippers.",
            650, "filters.svg"),
    Product("scale", "Brew scale", "0.1 g resolution with a built-in timer.",
            3900, "scale.svg"),
    Product("tote", "Canvas tote", "Carries 3 kg of beans, or a kettle.", 1800,
            "tote.svg"),
)
