"""The book's worked examples of chapter 5: buying apples (and oranges) with tax.

Each example runs twice, the two ways the chapter teaches: layers chained by hand
(``buy_apple``) and a recorded graph (``buy_apple_graph``). Expected numbers, from the
book: apple 100 × 2 × tax 1.1 = 220, with d apple 2.2, d apple count 110, d tax 200;
apples and oranges (100 × 2 + 150 × 3) × 1.1 = 715, with d apple count 110, d apple 2.2,
d orange 3.3, d orange count 165, d tax 650.
"""

from __future__ import annotations

from chainrule.graph import Graph
from chainrule.layers import AddLayer, MulLayer

__all__ = ["EXAMPLES", "buy_apple", "buy_apple_graph", "buy_apple_orange", "buy_apple_orange_graph"]


def buy_apple(apple: float = 100, apple_num: float = 2, tax: float = 1.1) -> dict[str, float]:
    """Price of ``apple_num`` apples with tax, and its gradients, by hand-chained layers."""
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
    apple_price = mul_apple_layer.forward(apple, apple_num)
    price = mul_tax_layer.forward(apple_price, tax)

    dapple_price, dtax = mul_tax_layer.backward(1)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    return {"price": price, "dapple": dapple, "dapple_num": dapple_num, "dtax": dtax}


def buy_apple_orange(
    apple: float = 100,
    apple_num: float = 2,
    orange: float = 150,
    orange_num: float = 3,
    tax: float = 1.1,
) -> dict[str, float]:
    """Price of apples and oranges with tax, and its gradients, by hand-chained layers."""
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    price = mul_tax_layer.forward(all_price, tax)

    dall_price, dtax = mul_tax_layer.backward(1)
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    dorange, dorange_num = mul_orange_layer.backward(dorange_price)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    return {
        "price": price,
        "dapple": dapple,
        "dapple_num": dapple_num,
        "dorange": dorange,
        "dorange_num": dorange_num,
        "dtax": dtax,
    }


def buy_apple_graph(apple: float = 100, apple_num: float = 2, tax: float = 1.1) -> Graph:
    """The apple example as a recorded graph, after backward from ``"price"``."""
    g = Graph()
    apple_price = g.apply(
        MulLayer(), g.input(apple, "apple"), g.input(apple_num, "apple count"), name="apple price"
    )
    price = g.apply(MulLayer(), apple_price, g.input(tax, "tax"), name="price")
    g.backward(price)
    return g


def buy_apple_orange_graph(
    apple: float = 100,
    apple_num: float = 2,
    orange: float = 150,
    orange_num: float = 3,
    tax: float = 1.1,
) -> Graph:
    """The apple-and-orange example as a recorded graph, after backward from ``"price"``."""
    g = Graph()
    apple_price = g.apply(
        MulLayer(), g.input(apple, "apple"), g.input(apple_num, "apple count"), name="apple price"
    )
    orange_price = g.apply(
        MulLayer(),
        g.input(orange, "orange"),
        g.input(orange_num, "orange count"),
        name="orange price",
    )
    all_price = g.apply(AddLayer(), apple_price, orange_price, name="all price")
    price = g.apply(MulLayer(), all_price, g.input(tax, "tax"), name="price")
    g.backward(price)
    return g


# name -> function building the recorded graph; for the command line.
EXAMPLES = {"apple": buy_apple_graph, "apple-orange": buy_apple_orange_graph}
