"""Orders without a parcel to a customer address (pickups, in-store sales) and Karla's order figures."""

from __future__ import annotations

import logging

import pytest

from tests.shopify.conftest import MakeAdapter, keys, read, records
from tests.shopify.factories import fulfillment, money, order, pickup, pos
from tests.shopify.fake_server import FakeShopify


@pytest.mark.parametrize("full_sync", [False, True])
def test_pickups_and_in_store_sales_are_skipped_not_rejected(
    shop: FakeShopify, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture, full_sync: bool
) -> None:
    """``requiresShipping`` is true for them (a pickup shipping line, physical items), but no address exists to
    withhold: they were dead letters blaming protected customer data, with a warning to request Level 2."""
    collected = pickup(1, updated="2026-11-20T10:00:00Z")
    collected["fulfillments"] = [fulfillment(collected, 71, [])]  # handed over at the counter: no tracking
    shop.add_order(collected)
    shop.add_order(pos(2, updated="2026-11-20T10:00:01Z"))
    shop.add_order(order(3, updated="2026-11-20T10:00:02Z"))
    shop.add_order(order(4, updated="2026-11-20T10:00:03Z", deliveryMethod="PICK_UP"))  # with an address: as usual
    caplog.set_level(logging.WARNING)
    adapter = make_adapter(recheck_unfulfilled_days=0, full_sync=full_sync)
    pages, _ = read(adapter)
    assert sorted(keys(pages)) == ["1003", "1004"]
    assert [r for p in pages for r in p.rejected] == []
    assert not any("shipping address" in r.getMessage() for r in caplog.records)
    assert sum(adapter.skipped.values()) == 2 and all("picked up" in reason for reason in adapter.skipped)
    (asked,) = shop.graphql_requests("DeliveryMethods")
    assert asked["variables"]["ids"] == [collected["id"]], "asked only for the order without an address and not from POS"


def test_an_order_to_ship_without_an_address_is_still_blamed_on_withheld_data(
    shop: FakeShopify, make_adapter: MakeAdapter
) -> None:
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z", shippingAddress=None))
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0))
    (rejected,) = [r for p in pages for r in p.rejected]
    assert "withheld the shipping address" in rejected.reason and "Level 2" in rejected.reason


def test_without_a_fulfillment_order_scope_a_pickup_is_rejected_naming_both_causes(
    shop: FakeShopify, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    shop.scopes = ["read_orders", "read_all_orders", "read_fulfillments"]  # Shopify then lists no fulfillment orders
    shop.add_order(pickup(1, updated="2026-11-20T10:00:00Z"))
    shop.add_order(pos(2, updated="2026-11-20T10:00:01Z"))  # told by sourceName alone
    caplog.set_level(logging.WARNING)
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0))
    (rejected,) = [r for p in pages for r in p.rejected]
    assert rejected.key == "1001" and "local pickup" in rejected.reason and "Level 2" in rejected.reason
    assert any("read_merchant_managed_fulfillment_orders" in r.getMessage() for r in caplog.records)


def test_sub_total_is_the_items_before_discounts_as_karla_defines_it(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    """Shopify's figures for 2 × 20.00 with code SAVE10 (10.00 off) and 4.90 shipping: currentSubtotalPriceSet
    is 30.00, after the discount; Karla's sub_total_price is "before shipping and discounts": 40.00."""
    data = order(1, updated="2026-11-20T10:00:00Z", items=1, currentTotalDiscountsSet=money("10.00"),
                 currentShippingPriceSet=money("4.90"), currentTotalPriceSet=money("34.90"), currentSubtotalPriceSet=money("30.00"))
    data["lineItems"][0].update(quantity=2, currentQuantity=2, originalUnitPriceSet=money("20.00"))
    data["discountApplications"] = [{"__typename": "DiscountCodeApplication", "code": "SAVE10",
                                     "value": {"__typename": "MoneyV2", "amount": "10.0", "currencyCode": "EUR"}}]
    shop.add_order(data)
    (record,) = records(read(make_adapter(recheck_unfulfilled_days=0))[0])
    o = record.order
    assert o is not None and (o.sub_total_price, o.discount_price, o.shipping_price, o.total_order_price) == (40.0, 10.0, 4.9, 34.9)
    assert o.sub_total_price - o.discount_price + o.shipping_price == pytest.approx(o.total_order_price)


def test_sub_total_sums_every_line_exactly_beyond_the_nested_page(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    """25 lines of 3 × 0.10 (one removed by an edit): 7.20 exactly, where float sums drift (7.199999...)."""
    data = order(1, updated="2026-11-20T10:00:00Z", items=25)
    for item in data["lineItems"]:
        item.update(quantity=3, currentQuantity=3, originalUnitPriceSet=money("0.10"))
    data["lineItems"][7]["currentQuantity"] = 0
    shop.add_order(data)
    (record,) = records(read(make_adapter(recheck_unfulfilled_days=0))[0])
    assert record.order is not None and record.order.sub_total_price == 7.2
    assert shop.graphql_requests("MoreLineItems"), "the lines beyond the nested page were fetched and counted"


def test_an_order_to_a_country_without_postal_codes_is_a_dead_letter_saying_why(
    shop: FakeShopify, make_adapter: MakeAdapter
) -> None:
    """Karla requires ``address.zip_code``; Hong Kong has none, so the order cannot be created there."""
    hk = order(1, updated="2026-11-20T10:00:00Z")
    hk["shippingAddress"].update(zip=None, city="Hong Kong", country="Hong Kong", countryCodeV2="HK", province=None, provinceCode=None)
    shop.add_order(hk)
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0))
    (rejected,) = [r for p in pages for r in p.rejected]
    assert records(pages) == [] and rejected.key == "1001"
    assert rejected.reason == "order #1001: the shipping address (HK) has no zip code; Karla needs a zip code to create the order"
