"""A product set holding several units of one product (a "3-pack"): one ``product`` child, like a customised
product, but at more units than the set's quantity. It was sent as that product at the set's quantity and price
(2 socks at 15.00 where the customer gets 6, the set's name lost); now it is a bundle with its units per set.
Shopware keeps a child's quantity as per set times sets (``LineItem::refreshChildQuantity``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connector.karla.models import dump
from tests.shopware import factory as f
from tests.shopware.conftest import Clock, MakeAdapter, records
from tests.shopware.fake_server import FakeShopware

CODE = "00340434161094042557"


def three_pack(number: str, on_child: bool = False) -> dict[str, Any]:
    """Two "Socks 3-pack" sets (15.00 each) of the product SOCK-B: the child line holds all 6 socks. The delivery
    position is on the set (the plugin copies the delivery information onto it), or on its child."""
    holder = f.line_item("Socks 3-pack", "SOCK-3", 2, 15.0, kind="swkweb-product-set", cover=None,
                         payload={"productNumber": "SOCK-3"})
    socks = f.line_item("Socks black", "SOCK-B", 6, 0.0, parent_id=holder["id"])
    shipped = f.delivery([(socks, 6) if on_child else (holder, 2)], codes=[CODE], status="shipped", ship_to=f.address())
    return f.order(number, items=[holder, socks], deliveries=[shipped], status="completed", amountTotal=34.9)


def _read(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter, order: dict[str, Any]) -> tuple[dict, list]:
    shop.insert(order, at=clock.now - timedelta(hours=1))
    (record,) = records(list(make_adapter().read("orders", None))).values()
    return dump(record.order), [dump(t)["products"] for t in record.trackings]  # type: ignore[arg-type]


def test_a_pack_of_one_product_is_a_bundle_with_its_units_per_set(shop: FakeShopware, clock: Clock,
                                                                  make_adapter: MakeAdapter) -> None:
    placed, parcels = _read(shop, clock, make_adapter, three_pack("30001"))
    (bundle,) = placed["products"]  # was {'sku': 'SOCK-B', 'title': 'Socks black', 'quantity': 2, 'price': 15.0}
    assert (bundle["type"], bundle["sku"], bundle["title"], bundle["quantity"], bundle["price"]) == (
        "bundle", "SOCK-3", "Socks 3-pack", 2, 15.0)
    assert [(p["sku"], p["title"], p["quantity"]) for p in bundle["bundled_products"]] == [("SOCK-B", "Socks black", 3)]
    assert placed["sub_total_price"] == 30.0  # the sets once
    assert parcels == [[bundle]]


def test_a_position_on_the_packs_child_is_that_product_at_its_units(shop: FakeShopware, clock: Clock,
                                                                    make_adapter: MakeAdapter) -> None:
    placed, parcels = _read(shop, clock, make_adapter, three_pack("30002", on_child=True))
    assert placed["products"][0]["type"] == "bundle"
    ((sock,),) = parcels  # was the pack as SOCK-B at 6 and the set's price 15.00
    assert (sock["sku"], sock["quantity"], sock.get("type")) == ("SOCK-B", 6, None)
