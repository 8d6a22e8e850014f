"""Review round 6: shipping and per-item codes, one payload whatever the bulk line order, one token and one
warning per process, the first poll of a big shop by bulk, and Shopify's own carrier names."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import adapters.shopify.adapter as adapter_module
import adapters.shopify.watch as watch_module
import tests.shopify.bulk_ops as bulk_ops
from adapters.shopify import ShopifyConfig
from adapters.shopify.cursor import CursorState
from connector.engine import SourceRuntime, sync_source
from connector.karla.carriers import carrier_fields
from connector.karla.models import dump
from state import StateDB
from tests.shopify.conftest import MakeAdapter, engine_runtime, read, records
from tests.shopify.factories import fulfillment, money, order
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock


def _code(code: str, *, target: str = "LINE_ITEM", method: str = "ACROSS", amount: str | None = None,
          percentage: float | None = None) -> dict[str, Any]:
    value = ({"__typename": "PricingPercentageValue", "percentage": percentage} if percentage is not None
             else {"__typename": "MoneyV2", "amount": amount, "currencyCode": "EUR"})
    return {"__typename": "DiscountCodeApplication", "code": code, "targetType": target, "allocationMethod": method,
            "targetSelection": "ALL", "value": value}


def _discounts(pages: list[Any]) -> list[dict[str, Any]]:
    return dump(records(pages)[0].order).get("discounts") or []


def _free_shipping(n: int) -> dict[str, Any]:
    data = order(n, updated="2026-11-20T10:00:00Z", currentShippingPriceSet=money("0.00"))
    data["discountApplications"] = [_code("FREESHIP", target="SHIPPING_LINE", method="EACH", percentage=100.0),
                                    _code("SOMMER10", percentage=10.0)]
    return data


@pytest.mark.parametrize("full_sync", [False, True], ids=["poll", "bulk"])
def test_a_free_shipping_code_is_no_order_discount(shop: FakeShopify, make_adapter: MakeAdapter, full_sync: bool) -> None:
    """It is already off the shipping price that is sent: as a discount it read as 100 % off the order."""
    shop.add_order(_free_shipping(1))
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0, full_sync=full_sync))
    assert _discounts(pages) == [{"code": "SOMMER10", "amount": "10.0", "type": "percentage"}]
    assert dump(records(pages)[0].order)["shipping_price"] == 0.0


def _per_item(n: int) -> dict[str, Any]:
    """5 EUR off each unit, three units of the first line, one of the second: 20 EUR off."""
    data = order(n, updated="2026-11-20T10:00:00Z", currentTotalDiscountsSet=money("20.00"))
    data["discountApplications"] = [_code("WELCOME", amount="10.0"), _code("5OFFEACH", method="EACH", amount="5.0")]
    data["lineItems"][0].update(quantity=3, currentQuantity=3, discountAllocations=[{"index": 1, "amount": "15.00"}])
    data["lineItems"][1].update(quantity=1, currentQuantity=1, discountAllocations=[{"index": 1, "amount": "5.00"}])
    return data


@pytest.mark.parametrize("full_sync", [False, True], ids=["poll", "bulk"])
def test_a_per_item_code_sends_what_it_took_off(shop: FakeShopify, make_adapter: MakeAdapter, full_sync: bool) -> None:
    shop.add_order(_per_item(1))
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z", discountApplications=[_code("WELCOME", amount="10.0")]))
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0, full_sync=full_sync))
    assert _discounts(pages) == [{"code": "WELCOME", "amount": "10.0", "type": "fixed_amount"},
                                 {"code": "5OFFEACH", "amount": "20.00", "type": "fixed_amount"}]
    asked = shop.graphql_requests("DiscountAllocations")
    assert [r["variables"]["id"] for r in asked] == [order(1)["id"]]  # only the order with a per-item code


def test_bulk_child_lines_in_another_order_send_nothing_again(
    shop: FakeShopify, clock: FakeClock, db: StateDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shopify promises no order among a bulk result's lines: the nightly full sync must build what the poll did."""
    for n in range(5):
        data = order(n, updated=f"2026-11-20T10:0{n}:00Z", items=3)
        data["discountApplications"] = [_code("A", amount="1.0"), _code("B", percentage=5.0)]
        shop.add_order(data)
    assert sync_source(db, engine_runtime(shop, clock), clock=clock.now).enqueued == 5

    def reversed_children(lines: list[str], layout: str) -> list[str]:
        out: list[str] = []
        block: list[str] = []
        for line in lines:
            if "__parentId" in line:
                block.append(line)
            else:
                out += reversed(block)
                block = []
                out.append(line)
        return out + list(reversed(block))

    monkeypatch.setattr(bulk_ops, "arrange", reversed_children)
    full = sync_source(db, engine_runtime(shop, clock, use_bulk_for_full_sync=True), clock=clock.now, full=True)
    assert shop.bulk.started and (full.read, full.enqueued) == (5, 0)


def test_one_token_grant_serves_every_poll(
    shop: FakeShopify, clock: FakeClock, db: StateDB, caplog: pytest.LogCaptureFixture
) -> None:
    """The engine builds the adapter anew each poll; the token (24 h) is the process's, not the adapter's."""
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z"))
    shop.add_client("karla-app", "s3cret-client-value")
    base = engine_runtime(shop, clock)
    config = ShopifyConfig(type="shopify", shop_domain=shop.domain, api_base_url=shop.url, client_id="karla-app",
                           client_secret="s3cret-client-value")
    runtime = SourceRuntime("shop", base.adapter_cls, config, default_slug="test-shop")
    caplog.set_level(logging.INFO)
    for _ in range(5):
        sync_source(db, runtime, clock=clock.now)
        clock.advance(300)
    assert shop.token_grants == 1 and shop.unauthorized == 0
    assert len([r for r in caplog.records if "obtained an access token" in r.getMessage()]) == 1


def test_the_first_poll_of_a_big_shop_is_one_bulk_operation(
    shop: FakeShopify, clock: FakeClock, make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter_module, "BULK_FIRST_POLL_FROM", 20)
    for n in range(30):
        shop.add_order(order(n, updated=f"2026-11-{7 + n % 13:02d}T10:{n:02d}:00Z"))  # within 14 days
    adapter = make_adapter()
    pages, cursor = read(adapter)
    assert len(records(pages)) == 30 and shop.bulk.started and not shop.graphql_requests("Orders")
    state = CursorState.parse(cursor or "")
    assert state.position.updated_at.isoformat() == "2026-11-20T11:59:00+00:00"  # now minus lag_seconds
    assert len(state.watch) == 30  # unshipped: watched for their tracking numbers, as after a paged poll
    shop.add_order(order(99, updated="2026-11-20T12:30:00Z"))
    clock.advance(3600)
    again, _ = read(make_adapter(), cursor)
    assert [r.key for r in records(again)] == ["1099"] and len(shop.bulk.started) == 1


def test_the_first_poll_of_a_small_shop_pages(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    for n in range(3):
        shop.add_order(order(n, updated=f"2026-11-1{n}T10:00:00Z"))
    pages, _ = read(make_adapter())
    assert len(records(pages)) == 3 and not shop.bulk.started and shop.graphql_requests("Orders")


def test_an_overflowing_watch_is_warned_about_once(
    shop: FakeShopify, clock: FakeClock, db: StateDB, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(watch_module, "WATCH_LIMIT", 3)
    for n in range(6):
        shop.add_order(order(n, updated=f"2026-11-20T10:0{n}:00Z"))
    runtime = engine_runtime(shop, clock, lookback_seconds=0)
    caplog.set_level(logging.WARNING)
    for i in range(4):
        sync_source(db, runtime, clock=clock.now)
        clock.advance(300)
        shop.add_order(order(100 + i))  # one more unshipped order per poll: still overflowing
    warned = [r.getMessage() for r in caplog.records if "await parcels" in r.getMessage()]
    assert len(warned) == 1 and shop.domain in warned[0]


def test_a_fall_forward_is_warned_about_once_per_process(
    shop: FakeShopify, clock: FakeClock, db: StateDB, caplog: pytest.LogCaptureFixture
) -> None:
    shop.served_version = "2027-01"
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z"))
    runtime = engine_runtime(shop, clock)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        sync_source(db, runtime, clock=clock.now)
        clock.advance(300)
    said = [r.getMessage() for r in caplog.records if "API version" in r.getMessage()]
    assert len(said) == 1 and "falls forward" not in said[0] and "not the configured" in said[0]


@pytest.mark.parametrize(("company", "expected"), [
    ("Deutsche Post (DE)", {"carrier_reference": "depost"}), ("Deutsche Post (EN)", {"carrier_reference": "depost"}),
    ("PostNord SE", {"carrier_reference": "postnord"}), ("PostNord DK", {"carrier_reference": "postnord"}),
    ("PostNord NO", {"carrier_reference": "postnord"}), ("Portal PostNord", {"carrier_reference": "postnord"}),
    ("BPost International", {"carrier_reference": "bpost"}),
    ("DHL eCommerce", {"tracking_company": "DHL eCommerce"}),  # not DHL Paket: Karla's matcher decides
])
def test_shopifys_own_carrier_names_reach_karlas_codes(company: str, expected: dict[str, str]) -> None:
    assert carrier_fields(company) == expected


def test_a_shopify_carrier_name_becomes_the_parcels_reference(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    data = order(1, updated="2026-11-20T10:00:00Z")
    data["fulfillments"] = [fulfillment(data, 71, ["00340434161234567890"], company="PostNord SE")]
    shop.add_order(data)
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0))
    assert [t.carrier_reference for t in records(pages)[0].trackings] == ["postnord"]


def test_the_engine_keeps_the_first_bulk_polls_cursor(
    shop: FakeShopify, clock: FakeClock, db: StateDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter_module, "BULK_FIRST_POLL_FROM", 20)
    for n in range(25):
        shop.add_order(order(n, updated=f"2026-11-{7 + n % 13:02d}T10:{n:02d}:00Z"))
    runtime = engine_runtime(shop, clock)
    first = sync_source(db, runtime, clock=clock.now)
    clock.advance(300)
    again = sync_source(db, runtime, clock=clock.now)
    assert (first.enqueued, again.enqueued, len(shop.bulk.started)) == (25, 0, 1)
    assert len(shop.graphql_requests("OrdersCount")) == 1  # asked on the first poll only
