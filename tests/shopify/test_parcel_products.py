"""A parcel's products are the order's products (image, unit price, ids) with the quantity shipped in it.

Karla keeps a shipment's products apart from the order's and renders their images on the tracking page
(karla-docs 000, 003 Update Shipment); a parcel listing only sku, title and quantity showed its items bare.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.shopify.products import parcel_products
from connector.engine import sync_source
from connector.karla.models import dump
from state import StateDB
from tests.shopify.conftest import MakeAdapter, engine_runtime, read, records
from tests.shopify.factories import fulfillment, order
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock


def _shipped_in_two_parcels() -> dict[str, Any]:
    """Three line items (0 and 2 with an image, 1 a custom item), shipped apart; line 2 partly refunded."""
    data = order(61, updated="2026-11-20T10:00:00Z", items=3)
    data["lineItems"][1].update(sku=None, product=None, variant=None)
    data["lineItems"][2].update(currentQuantity=1)  # 3 ordered, 2 refunded after the parcel left
    data["fulfillments"] = [
        fulfillment(data, 6101, ["PARCEL-A"], items=[(0, 1), (1, 2)], created="2026-11-20T09:00:00Z"),
        fulfillment(data, 6102, ["PARCEL-B"], items=[(2, 3)], created="2026-11-20T09:30:00Z"),
    ]
    return data


EXPECTED = {
    "PARCEL-A": [
        {"title": "Artikel 0 „Größe M“", "sku": "SKU-61-0", "quantity": 1, "price": 10.5,
         "images": [{"src": "https://cdn.shopify.com/s/files/61-0.jpg"}], "product_id": "8000000", "variant_id": "9000000"},
        {"title": "Artikel 1 „Größe M“", "quantity": 2, "price": 11.5, "images": []},
    ],
    # the quantity shipped (3), not what is left on the order (1)
    "PARCEL-B": [
        {"title": "Artikel 2 „Größe M“", "sku": "SKU-61-2", "quantity": 3, "price": 12.5,
         "images": [{"src": "https://cdn.shopify.com/s/files/61-2.jpg"}], "product_id": "8000002", "variant_id": "9000002"},
    ],
}


@pytest.mark.parametrize("full_sync", [False, True], ids=["paged", "bulk"])
def test_a_parcel_carries_its_products_images_and_prices(
    shop: FakeShopify, make_adapter: MakeAdapter, full_sync: bool
) -> None:
    shop.add_order(_shipped_in_two_parcels())
    (record,) = records(read(make_adapter(full_sync=full_sync, recheck_unfulfilled_days=0))[0])
    assert {t.tracking_number: [dump(p) for p in t.products] for t in record.trackings} == EXPECTED
    assert record.order is not None
    ordered = {p.sku: dump(p) for p in record.order.products}
    assert ordered["SKU-61-2"] == {**EXPECTED["PARCEL-B"][0], "quantity": 1}, "the order's product, as the parcel's"


def test_parcels_beyond_the_nested_page_carry_images_too(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    """Line items and parcel items past the first page come from the follow-up queries: still complete."""
    data = order(62, updated="2026-11-20T10:00:00Z", items=14)
    data["fulfillments"] = [fulfillment(data, 6201, ["BIG-62"])]
    shop.add_order(data)
    (record,) = records(read(make_adapter(recheck_unfulfilled_days=0))[0])
    assert record.order is not None
    assert [dump(p) for p in record.trackings[0].products] == [dump(p) for p in record.order.products]
    assert shop.graphql_requests("MoreLineItems") and shop.graphql_requests("MoreFulfillmentLineItems")


def test_the_engine_queues_parcels_with_products_that_the_full_sync_leaves_unchanged(
    shop: FakeShopify, clock: FakeClock, db: StateDB
) -> None:
    """Paging and the bulk full sync give a parcel the same products: no parcel goes twice for it."""
    shop.add_order(_shipped_in_two_parcels())
    first = sync_source(db, engine_runtime(shop, clock), clock=clock.now)
    assert (first.read, first.enqueued) == (1, 1 + 2)
    clock.advance(600)
    nightly = sync_source(db, engine_runtime(shop, clock, use_bulk_for_full_sync=True), clock=clock.now, full=True)
    assert (nightly.read, nightly.enqueued) == (1, 0)


def test_a_parcel_item_the_order_does_not_list_keeps_what_the_fulfillment_names() -> None:
    """Data read without the line item's id (or a line the order no longer lists) is sent as before, not dropped."""
    items = order(63, items=1)["lineItems"]
    shipped = [{"quantity": 1, "lineItem": {"sku": "OLD-1", "title": "Alter Artikel"}},
               {"quantity": 2, "lineItem": {"id": "gid://shopify/LineItem/1", "sku": "GONE-1", "title": "Weg"}}]
    assert parcel_products(items, shipped) == [{"sku": "OLD-1", "title": "Alter Artikel", "quantity": 1},
                                               {"sku": "GONE-1", "title": "Weg", "quantity": 2}]
