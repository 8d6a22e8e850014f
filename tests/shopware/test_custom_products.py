"""Goods a plugin keeps in child lines (``adapters.shopware.lines``): Shopware's Custom Products and product-set
plugins store a top-level holder line whose ``product`` children are what was bought. They were sent as no
product at all (sub-total 0, empty parcels), with a warning to send the holder's ``*`` instead."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest

from connector.karla.models import dump
from tests.shopware import factory as f
from tests.shopware.conftest import Clock, MakeAdapter, records
from tests.shopware.fake_server import FakeShopware

CODE = "00340434161094042557"


def custom_product(number: str, quantity: int = 1) -> dict[str, Any]:
    """SwagCustomizedProducts: the template line (no real product number) holds the product and its option; the
    delivery position is on the template line (the plugin copies the product's delivery information onto it)."""
    template = uuid.uuid4().hex
    box = f.line_item("Engraving options", template, quantity, 25.0, kind="customized-products", cover=None,
                      payload={"customized-products-configuration-hash": uuid.uuid4().hex, "productNumber": "*"})
    box["referencedId"], box["good"] = template, False
    watch = f.line_item("Engraved watch", "WATCH-01", quantity, 20.0, parent_id=box["id"])
    engraving = f.line_item("Engraving", "opt", quantity, 5.0, kind="customized-products-option", cover=None,
                            parent_id=box["id"], payload={})
    shipped = f.delivery([(box, quantity)], codes=[CODE], status="shipped", ship_to=f.address())
    return f.order(number, items=[box, watch, engraving], deliveries=[shipped], status="completed",
                   amountTotal=round(25.0 * quantity + 4.9, 2))  # the children's prices are in the template line's


def product_set(number: str) -> dict[str, Any]:
    """A set plugin's line: two sets of a mug and two spoons; the set's price is in the holder."""
    holder = f.line_item("Breakfast set", "SET-1", 2, 30.0, kind="swkweb-product-set", cover=None,
                         payload={"productNumber": "SET-1"})
    mug = f.line_item("Mug", "MUG-1", 2, 0.0, parent_id=holder["id"])
    spoons = f.line_item("Spoon", "SPOON-1", 4, 0.0, parent_id=holder["id"])
    shirt = f.line_item("Shirt", "SHIRT-1", 1, 10.0)
    shipped = f.delivery([(holder, 2), (shirt, 1)], codes=[CODE], status="shipped", ship_to=f.address())
    return f.order(number, items=[holder, mug, spoons, shirt], deliveries=[shipped], status="completed")


def _read(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter, order: dict[str, Any],
          **config: Any) -> tuple[dict, list]:
    shop.insert(order, at=clock.now - timedelta(hours=1))
    (record,) = records(list(make_adapter(**config).read("orders", None))).values()
    return dump(record.order), [dump(t)["products"] for t in record.trackings]  # type: ignore[arg-type]


@pytest.mark.parametrize("config", [{}, {"deposit_line_item_type": "customized-products"}])  # as the old warning said
def test_a_custom_product_is_sent_as_its_product_at_the_price_with_options(
        config: dict[str, Any], shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter,
        caplog: pytest.LogCaptureFixture) -> None:
    order = custom_product("20001", quantity=2)
    placed, parcels = _read(shop, clock, make_adapter, order, **config)
    watch = order["lineItems"][1]
    product = {"sku": "WATCH-01", "title": "Engraved watch", "quantity": 2, "price": 25.0, "product_id": watch["productId"],
               "variant_id": watch["productId"], "images": [{"src": "https://shop.example.com/media/watch-01.jpg"}]}
    assert placed["products"] == [product]  # was [] (sku '*', the template's name with the setting)
    assert placed["sub_total_price"] == 50.0 == placed["total_order_price"] - placed["shipping_price"]  # was 0.0
    assert parcels == [[product]]  # was [[]]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no advice to send the '*' line


def test_a_position_on_the_custom_products_child_is_the_same_product(shop: FakeShopware, clock: Clock,
                                                                     make_adapter: MakeAdapter) -> None:
    order = custom_product("20002")
    box, watch, _ = order["lineItems"]
    order["deliveries"] = [f.delivery([(watch, 1)], codes=[CODE], status="shipped", ship_to=f.address())]
    placed, parcels = _read(shop, clock, make_adapter, order)
    assert parcels == [placed["products"]] and placed["products"][0]["sku"] == "WATCH-01"


def test_a_product_set_is_a_bundle_of_its_products(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    placed, parcels = _read(shop, clock, make_adapter, product_set("20003"))
    bundle, shirt = placed["products"]
    assert (bundle["type"], bundle["sku"], bundle["title"]) == ("bundle", "SET-1", "Breakfast set")
    assert (bundle["quantity"], bundle["price"]) == (2, 30.0)
    assert [(p["sku"], p["quantity"]) for p in bundle["bundled_products"]] == [("MUG-1", 1), ("SPOON-1", 2)]  # per set
    assert "type" not in shirt and "bundled_products" not in shirt  # a plain product serialises as before
    assert placed["sub_total_price"] == 70.0  # the set once, its children not added
    assert parcels == [[bundle, shirt]]


def test_an_unknown_line_without_product_children_is_still_warned_about(shop: FakeShopware, clock: Clock,
                                                                        make_adapter: MakeAdapter,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    order = custom_product("20004")
    wrap = f.line_item("Gift wrap", "WRAP", 1, 3.5, kind="giftwrap", cover=None, payload={})
    order["lineItems"].append(wrap)
    _read(shop, clock, make_adapter, order)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "'giftwrap'" in warned[0] and "customized-products" not in warned[0]
