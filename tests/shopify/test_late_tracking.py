"""Tracking numbers that arrive without the order's ``updatedAt`` moving still reach the records."""

from __future__ import annotations

import json

import pytest

from adapters.shopify import ShopifyAdapter, watch
from tests.shopify.conftest import MakeAdapter, read, records
from tests.shopify.factories import fulfillment, order, order_gid
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock


def make(make_adapter: MakeAdapter, **settings: object) -> ShopifyAdapter:
    """These tests isolate the recheck: without a lookback, no window read re-reads the orders it must find."""
    return make_adapter(**{"lookback_seconds": 0, **settings})


def _trackings(pages: list) -> dict[str, list[str]]:
    return {r.key: sorted(t.tracking_number for t in r.trackings) for r in records(pages)}


def test_fulfillment_added_later_without_order_update(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    parent = shop.add_order(order(1, updated="2026-11-20T10:00:00Z"))
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z"))
    _, cursor = read(make(make_adapter))

    clock.advance(3600)
    shop.store.add_fulfillment(parent["id"], fulfillment(parent, 71, ["JJD0001", "JJD0002"]), touch=False)
    assert shop.store.order(parent["id"])["updatedAt"] == "2026-11-20T10:00:00Z"
    shop.requests.clear()
    pages, _ = read(make(make_adapter), cursor)
    assert _trackings(pages) == {"1001": ["JJD0001", "JJD0002"]}  # 1002 is probed, unchanged, not re-read
    full_reads = [r["variables"]["ids"] for r in shop.graphql_requests("OrdersById")]
    assert full_reads == [[order_gid(1)]]
    assert {r["cost"] for r in shop.graphql_requests("ProbeOrders")} <= {3, 6}  # 3 points per watched order


def test_partial_shipment_then_second_parcel_without_order_update(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    parent = order(1, updated="2026-11-20T10:00:00Z")
    parent["fulfillments"] = [fulfillment(parent, 71, ["FIRST"], items=[(0, 1)])]
    parent = shop.add_order(parent)
    first, cursor = read(make(make_adapter))
    assert _trackings(first)["1001"] == ["FIRST"]

    shop.store.add_fulfillment(parent["id"], fulfillment(parent, 72, ["SECOND"], items=[(1, 2)]), touch=False)
    pages, _ = read(make(make_adapter), cursor)
    assert _trackings(pages)["1001"] == ["FIRST", "SECOND"]


def test_number_added_to_a_shipped_fulfillment_later(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    """'Mark as fulfilled' first, tracking number typed in later: no search filter finds this order."""
    parent = order(1, updated="2026-11-20T10:00:00Z")
    parent["fulfillments"] = [fulfillment(parent, 71, [])]
    shop.add_order(parent)
    shop.add_order(order(2, updated="2026-11-20T10:00:05Z"))
    first, cursor = read(make(make_adapter))
    assert _trackings(first)["1001"] == []
    watched = json.loads(cursor or "{}")["watch"]
    assert set(watched) == {"5000001", "5000002"}  # shipped without a number, and not shipped yet

    clock.advance(7200)
    shop.store.add_tracking("gid://shopify/Fulfillment/71", "1Z999AA10123456784", "UPS", "https://ups.example/1Z9")
    pages, cursor = read(make(make_adapter), cursor)
    late = next(r for r in records(pages) if r.key == "1001")
    assert [(t.tracking_number, t.carrier_reference, t.external_shipment_id) for t in late.trackings] == [
        ("1Z999AA10123456784", "ups", "71")]
    assert "5000001" not in json.loads(cursor or "{}")["watch"], "an order with its number is no longer watched"

    again, _ = read(make(make_adapter), cursor)
    assert "1001" not in _trackings(again)


def test_watched_orders_leave_the_watch_when_older_than_the_window(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    parent = order(1, updated="2026-11-20T10:00:00Z")
    parent["fulfillments"] = [fulfillment(parent, 71, [])]
    shop.add_order(parent)
    _, cursor = read(make(make_adapter, recheck_unfulfilled_days=2))
    assert json.loads(cursor or "{}").get("watch")
    clock.advance(3 * 86400)
    pages, cursor = read(make(make_adapter, recheck_unfulfilled_days=2), cursor)
    assert "watch" not in json.loads(cursor or "{}")


def test_recheck_can_be_switched_off(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z"))
    _, cursor = read(make(make_adapter, recheck_unfulfilled_days=0))
    read(make(make_adapter, recheck_unfulfilled_days=0), cursor)
    assert not [s for s in shop.searches if "fulfillment_status" in s]


def test_unshipped_orders_unknown_to_the_watch_are_found_by_search(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    """A cursor without a watch (or an overflowing one): the unshipped search still finds the order."""
    parent = shop.add_order(order(1, updated="2026-11-20T10:00:00Z"))
    cursor = json.dumps({"updated_at": "2026-11-20T10:00:00Z", "id": order_gid(1)})
    shop.store.add_fulfillment(parent["id"], fulfillment(parent, 71, ["PARTIAL-1"], items=[(0, 1)]), touch=False)
    pages, cursor = read(make(make_adapter), cursor)
    assert _trackings(pages) == {"1001": ["PARTIAL-1"]}
    assert "5000001" in json.loads(cursor or "{}")["watch"]


def test_the_overflow_beyond_the_watch_limit_is_left_to_the_full_sync(
    shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More orders await parcels than the watch keeps: the older ones are not read in full on every poll
    (they were, found by the unshipped search and dropped again when the watch was stored)."""
    monkeypatch.setattr(watch, "WATCH_LIMIT", 3)
    for n in range(8):
        shop.add_order(order(n, updated=f"2026-11-20T10:00:0{n}Z"))
    _, cursor = read(make(make_adapter))
    assert sorted(json.loads(cursor or "{}")["watch"]) == ["5000005", "5000006", "5000007"]
    newest = shop.store.order(order_gid(7))
    for poll in range(2):
        clock.advance(60)
        shop.requests.clear()
        pages, cursor = read(make(make_adapter), cursor)
        assert not records(pages) and not shop.graphql_requests("OrdersById"), f"poll {poll} re-read the overflow"
    shop.store.add_fulfillment(newest["id"], fulfillment(newest, 77, ["LATE-7"]), touch=False)
    clock.advance(60)
    pages, _ = read(make(make_adapter), cursor)
    assert _trackings(pages) == {"1007": ["LATE-7"]}, "watched orders are still rechecked"
