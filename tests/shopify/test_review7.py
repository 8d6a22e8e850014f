"""Findings of the seventh review of the Shopify source.

1. An order with nothing to ship (``requiresShipping`` false: an e-book, a gift card, a service sold in a shop) and
   no address became a dead letter nobody could clear ("Karla needs a zip code"), and every run reading it exited 1.
2. A parcel with a tracking link but no number was left out without a word.
3. The bulk full sync sent an order deleted after the export, with a parcel listing no products.
"""

from __future__ import annotations

import logging

import pytest

from connector.engine import sync_source
from connector.karla.models import dump
from state import DeadLetters, StateDB
from tests.shopify.conftest import MakeAdapter, engine_runtime, keys, read, records
from tests.shopify.factories import fulfillment, order, order_gid
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock


def _letters(db: StateDB) -> list[tuple[str, str | None]]:
    with db.read() as conn:
        return [(row.stage, row.order_key) for row in DeadLetters(conn).list()]


def _earlier_letter(db: StateDB, n: int, now: float) -> None:
    """The letter the build before this fix gave a digital order (the upgrade path: it must clear)."""
    row = {"created_at": now, "stage": "source", "source": "shop", "stream": "orders", "slug": "test-shop",
           "order_key": str(1000 + n), "location": f"{order_gid(n)} (#{1000 + n})",
           "reason": f"order #{1000 + n}: nothing to ship (digital goods or a pickup), so there is no shipping address; "
                     "Karla needs a zip code to create the order", "payload": {"id": order_gid(n), "name": f"#{1000 + n}"}}
    with db.transaction() as conn:
        DeadLetters(conn).add([row])


@pytest.mark.parametrize("full", [False, True], ids=["poll", "full-sync"])
def test_orders_with_nothing_to_ship_and_no_address_are_skipped_not_letters(
    shop: FakeShopify, clock: FakeClock, db: StateDB, full: bool
) -> None:
    gift = order(1, updated="2026-11-20T10:00:00Z", items=1, shippingAddress=None, requiresShipping=False)
    gift["lineItems"][0].update(title="Geschenkkarte 50 EUR", sku=None)
    gift["fulfillments"] = [fulfillment(gift, 501, [], company=None, requires_shipping=False)]  # Shopify fulfils it at once
    shop.add_order(gift)
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z", items=1, shippingAddress=None, requiresShipping=False))  # e-book
    shop.add_order(order(3, updated="2026-11-20T10:00:02Z", requiresShipping=False))  # digital, yet with an address: sent
    shop.add_order(order(4, updated="2026-11-20T10:00:03Z"))  # something to ship among its lines: sent as ever
    _earlier_letter(db, 2, clock.now().timestamp())
    rt = engine_runtime(shop, clock, recheck_unfulfilled_days=0)
    clock.advance(600)  # past lag_seconds

    first = sync_source(db, rt, clock=clock.now, full=full)
    assert (first.read, first.rejected, first.new_letters) == (2, 0, 0)
    assert _letters(db) == []  # the e-book's earlier letter is gone

    clock.advance(600)
    again = sync_source(db, rt, clock=clock.now, full=True)  # the nightly full sync reads them all again
    assert (again.rejected, again.new_letters) == (0, 0) and _letters(db) == []


def test_a_digital_order_with_an_address_but_no_zip_is_lettered_for_its_address(
    shop: FakeShopify, make_adapter: MakeAdapter
) -> None:
    """Still sent, so still refused for its missing zip code: the letter names that, not "no shipping address"."""
    hk = order(5, updated="2026-11-20T10:00:00Z", requiresShipping=False)
    hk["shippingAddress"].update(zip=None, city="Hong Kong", country="Hong Kong", countryCodeV2="HK")
    shop.add_order(hk)
    pages, _ = read(make_adapter())
    (letter,) = [r for p in pages for r in p.rejected]
    assert "the shipping address (HK) has no zip code" in letter.reason


def _link_only(n: int, fid: int, url: str | None, updated: str) -> dict:
    o = order(n, updated=updated, items=1)
    f = fulfillment(o, fid, [], company="Kiezkurier Berlin")
    f["trackingInfo"] = [{"number": None, "company": "Kiezkurier Berlin", "url": url}]
    o["fulfillments"] = [f]
    return o


def test_a_parcel_with_a_tracking_link_but_no_number_is_named_once(
    shop: FakeShopify, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    shop.add_order(_link_only(1, 601, "https://kiezkurier.example/t/ABC?token=s3cr3t", "2026-11-20T10:00:00Z"))
    shop.add_order(_link_only(2, 602, None, "2026-11-20T10:00:01Z"))  # shipped, no tracking yet: nothing to say
    tracked = order(3, updated="2026-11-20T10:00:02Z")
    tracked["fulfillments"] = [fulfillment(tracked, 603, ["JJD0003"])]
    shop.add_order(tracked)
    caplog.set_level(logging.INFO)

    pages, _ = read(make_adapter())
    assert {r.key: [dump(t)["tracking_number"] for t in r.trackings] for r in records(pages)} == {
        "1001": [], "1002": [], "1003": ["JJD0003"]}
    told = [r for r in caplog.records if "no tracking number" in r.getMessage()]
    assert len(told) == 1 and told[0].levelno == logging.WARNING
    message = told[0].getMessage()
    assert "#1001" in message and "kiezkurier.example" in message and "add the number" in message
    assert "/t/ABC" not in message and "s3cr3t" not in message

    caplog.clear()
    read(make_adapter())  # the next run (the engine builds an adapter per run) reads it again: said already
    read(make_adapter(full_sync=True))  # and so does the nightly full sync, by bulk
    assert [r for r in caplog.records if "no tracking number" in r.getMessage()] == []


def test_the_bulk_full_sync_leaves_out_an_order_deleted_after_the_export(
    shop: FakeShopify, make_adapter: MakeAdapter
) -> None:
    gone = order(1, updated="2026-11-20T10:00:00Z")
    gone["fulfillments"] = [fulfillment(gone, 777, ["GONE-1"])]
    shop.add_order(gone)
    kept = order(2, updated="2026-11-20T10:00:01Z")
    kept["fulfillments"] = [fulfillment(kept, 778, ["KEPT-1"])]
    shop.add_order(kept)

    def delete_after_the_export(request: dict) -> None:
        if request["operation"] == "FulfillmentLineItems":  # the parcels' items, asked after the bulk result came
            shop.store.orders.pop(gone["id"], None)

    shop.on_request = delete_after_the_export
    pages, _ = read(make_adapter(full_sync=True, recheck_unfulfilled_days=0))
    assert shop.graphql_requests("BulkRun") and shop.graphql_requests("FulfillmentLineItems")
    assert keys(pages) == ["1002"]
    ((parcel,),) = [r.trackings for r in records(pages)]
    assert dump(parcel)["products"]
