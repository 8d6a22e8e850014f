"""Shopify orders as Karla sees them: field by field, parcels, discounts, withheld data, rejections."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import ValidationError

from adapters.shopify import ShopifyConfig, queries
from adapters.shopify.mapping import MappingOptions, map_order, order_number
from connector.karla.models import dump
from tests.shopify.conftest import MakeAdapter, keys, read, records
from tests.shopify.factories import fulfillment, money, order
from tests.shopify.fake_server import FakeShopify


def _realistic() -> dict:
    data = order(42, updated="2026-11-20T10:00:00Z", items=3, name="#1042", email="zoë.müller@example.com",
                 createdAt="2026-11-19T08:30:00Z", processedAt="2026-11-19T08:29:55Z", tags=["vip", "Großkunde"],
                 currentTotalPriceSet=money("69.90"), currentSubtotalPriceSet=money("65.00"),
                 currentShippingPriceSet=money("4.90"), currentTotalDiscountsSet=money("6.00"))
    data["lineItems"][1].update(sku=None, product=None, variant=None)  # a custom item: no product behind it
    data["shippingAddress"].update(name="Zoë Müller-Łukasiewicz", company="Ärzte GmbH", address2="Hinterhaus, 3. OG",
                                   phone="+49 30 1234567")
    data["discountApplications"] = [
        {"__typename": "DiscountCodeApplication", "code": "SOMMER10", "value": {"__typename": "PricingPercentageValue", "percentage": 10.0}},
        {"__typename": "DiscountCodeApplication", "code": "VIP5", "value": {"__typename": "MoneyV2", "amount": "5.0", "currencyCode": "EUR"}},
        {"__typename": "AutomaticDiscountApplication", "value": {"__typename": "MoneyV2", "amount": "1.0", "currencyCode": "EUR"}},
    ]
    data["fulfillments"] = [
        fulfillment(data, 9001, ["JJD000390007", "JJD000390008"], company="DHL Express", items=[(0, 1), (1, 2)],
                    created="2026-11-20T09:00:00Z"),
        fulfillment(data, 9002, ["H1234"], company="Hermes", items=[(2, 3)], created="2026-11-20T09:30:00Z"),
        fulfillment(data, 9003, ["VOID-1"], company="DHL", status="CANCELLED", items=[(2, 3)]),
        fulfillment(data, 9004, ["KURIER-7"], company="Kiezkurier Berlin", items=[(0, 1)], created="2026-11-20T09:45:00Z"),
    ]
    return data


def test_realistic_order_field_by_field(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    shop.add_order(_realistic())
    pages, _ = read(make_adapter(segment_prefix="shopify:", recheck_unfulfilled_days=0))
    (record,) = records(pages)
    assert (record.key, record.id_type, record.cursor) == ("1042", "order_number", "2026-11-20T10:00:00Z")
    assert dump(record.order) == {
        "order_number": "1042", "order_name": "#1042", "external_id": "5000042", "order_placed_at": "2026-11-19T08:29:55Z",
        "email_id": "zoë.müller@example.com", "currency": "EUR", "total_order_price": 69.9, "shipping_price": 4.9,
        "sub_total_price": 71.0, "discount_price": 6.0,  # 1 × 10.50 + 2 × 11.50 + 3 × 12.50, before the 6.00 off
        "products": [
            {"title": "Artikel 0 „Größe M“", "sku": "SKU-42-0", "quantity": 1, "price": 10.5,
             "images": [{"src": "https://cdn.shopify.com/s/files/42-0.jpg"}], "product_id": "8000000", "variant_id": "9000000"},
            {"title": "Artikel 1 „Größe M“", "quantity": 2, "price": 11.5, "images": []},
            {"title": "Artikel 2 „Größe M“", "sku": "SKU-42-2", "quantity": 3, "price": 12.5,
             "images": [{"src": "https://cdn.shopify.com/s/files/42-2.jpg"}], "product_id": "8000002", "variant_id": "9000002"},
        ],
        "discounts": [{"code": "SOMMER10", "amount": "10.0", "type": "percentage"},
                      {"code": "VIP5", "amount": "5.0", "type": "fixed_amount"}],
        "address": {
            "zip_code": "10119", "name": "Zoë Müller-Łukasiewicz", "company": "Ärzte GmbH", "address_line_1": "Torstraße 1",
            "address_line_2": "Hinterhaus, 3. OG", "street": "Torstraße 1, Hinterhaus, 3. OG", "city": "Berlin",
            "province": "Berlin", "province_code": "BE", "country": "Germany", "country_code": "DE", "phone": "+49 30 1234567",
        },
        "segments": ["shopify:vip", "shopify:Großkunde"], "external_customer_id": "742",
        "order_status_url": "https://karla-test.myshopify.com/123/orders/abc42/authenticate?key=k42",
    }
    line_0 = {"title": "Artikel 0 „Größe M“", "sku": "SKU-42-0", "quantity": 1, "price": 10.5,  # the order's product
              "images": [{"src": "https://cdn.shopify.com/s/files/42-0.jpg"}], "product_id": "8000000", "variant_id": "9000000"}
    parcel_a = [line_0, {"title": "Artikel 1 „Größe M“", "quantity": 2, "price": 11.5, "images": []}]
    assert [dump(t) for t in record.trackings] == [
        {"tracking_number": "JJD000390007", "tracking_url": "https://track.example/JJD000390007", "carrier_reference": "dhlexp",
         "tracking_placed_at": "2026-11-20T09:00:00Z", "external_shipment_id": "9001", "products": parcel_a},
        {"tracking_number": "JJD000390008", "tracking_url": "https://track.example/JJD000390008", "carrier_reference": "dhlexp",
         "tracking_placed_at": "2026-11-20T09:00:00Z", "external_shipment_id": "9001", "products": parcel_a},
        {"tracking_number": "H1234", "tracking_url": "https://track.example/H1234", "carrier_reference": "hrs",
         "tracking_placed_at": "2026-11-20T09:30:00Z", "external_shipment_id": "9002",
         "products": [dump(record.order)["products"][2]]},
        {"tracking_number": "KURIER-7", "tracking_url": "https://track.example/KURIER-7", "tracking_company": "Kiezkurier Berlin",
         "tracking_placed_at": "2026-11-20T09:45:00Z", "external_shipment_id": "9004",
         "products": [line_0]},
    ]


def test_carrier_overrides_and_tags_switched_off(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    shop.add_order(_realistic())
    adapter = make_adapter(carriers={"Kiezkurier Berlin": "dpd"}, tags_as_segments=False, recheck_unfulfilled_days=0)
    (record,) = records(read(adapter)[0])
    assert record.order is not None and record.order.segments == []
    assert {t.tracking_number: t.carrier_reference for t in record.trackings}["KURIER-7"] == "dpd"


def test_long_orders_are_completed_beyond_the_nested_page(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    data = order(1, updated="2026-11-20T10:00:00Z", items=25)
    data["fulfillments"] = [fulfillment(data, 71, ["BIG-1"])]
    shop.add_order(data)
    (record,) = records(read(make_adapter(recheck_unfulfilled_days=0))[0])
    assert record.order is not None and len(record.order.products) == 25
    assert len(record.trackings[0].products) == 25
    assert shop.graphql_requests("MoreLineItems") and shop.graphql_requests("MoreFulfillmentLineItems")


def test_digital_orders_without_an_address_are_skipped_and_neighbours_go_on(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z", shippingAddress=None, requiresShipping=False))
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z"))
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0))  # were letters no one could clear (review 7)
    assert [r for p in pages for r in p.rejected] == [] and [k for p in pages for k in p.skipped] == ["1001"]
    assert [r.key for r in records(pages)] == ["1002"]


def test_withheld_customer_data_warns_once_and_still_sends_what_it_can(
    shop: FakeShopify, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z", email=None))
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z"))
    first, _ = records(read(make_adapter(recheck_unfulfilled_days=0))[0])
    assert first.order is not None and first.order.email_id is None and first.order.address.zip_code == "10119"

    shop.redact_customer_data = True
    for n in range(3, 6):
        shop.add_order(order(n, updated="2026-11-20T10:00:02Z"))
    caplog.set_level(logging.WARNING)
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0), None)
    rejected = [r for p in pages for r in p.rejected]
    assert len(rejected) == 5 and all("protected customer data" in r.reason for r in rejected)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "Customer object" in w]) == 1, warnings
    assert len([w for w in warnings if "without a shipping address" in w]) == 1, warnings


@pytest.mark.parametrize(("name", "number"), [("#1001", "1001"), ("EU-2044", "2044"), ("2044-B", "2044"), ("A1-77", "A1-77")])
def test_order_number_is_the_numeric_part_of_the_name(name: str, number: str) -> None:
    assert order_number({"name": name, "legacyResourceId": "9"}) == number


def _edited() -> dict:
    """Order #1043 after an order edit removed line 1 and a refund took back 2 of line 2's 3 units."""
    data = order(43, updated="2026-11-20T10:00:00Z", items=3, currentTotalPriceSet=money("27.90"),
                 currentSubtotalPriceSet=money("23.00"), currentShippingPriceSet=money("4.90"),
                 currentTotalDiscountsSet=money("0.00"))
    data["lineItems"][1]["currentQuantity"] = 0
    data["lineItems"][2]["currentQuantity"] = 1
    data["fulfillments"] = [fulfillment(data, 9101, ["JJD0001"], created="2026-11-20T09:00:00Z")]
    return data


@pytest.mark.parametrize("full_sync", [False, True], ids=["poll", "bulk"])
def test_order_edits_and_refunds_send_what_is_left_on_the_order(
    shop: FakeShopify, make_adapter: MakeAdapter, full_sync: bool
) -> None:
    """Shopify's ``quantity`` and ``totalPriceSet`` still count removed and refunded units; Karla gets what is left."""
    shop.add_order(_edited())
    (record,) = records(read(make_adapter(full_sync=full_sync, recheck_unfulfilled_days=0))[0])
    sent = dump(record.order)
    assert [(p["sku"], p["quantity"]) for p in sent["products"]] == [("SKU-43-0", 1), ("SKU-43-2", 1)]
    assert (sent["total_order_price"], sent["sub_total_price"], sent["shipping_price"], sent["discount_price"]) == (
        27.9, 23.0, 4.9, 0.0)
    assert [(p.sku, p.quantity) for p in record.trackings[0].products] == [("SKU-43-0", 1), ("SKU-43-2", 1)]
    assert not shop.graphql_requests("Orders") if full_sync else shop.graphql_requests("Orders"), "the path under test"


def test_the_fake_counts_an_order_as_shipped_once_what_is_left_shipped(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    """Like Shopify: removed units need no parcel, so the order stops awaiting one (and leaves the watch)."""
    shop.add_order(_edited())
    found = make_adapter().client.data(queries.PROBE_BY_ID, {"ids": [order(43)["id"]]})
    assert found["nodes"][0]["displayFulfillmentStatus"] == "FULFILLED"


def test_line_items_without_current_quantity_fall_back_to_the_ordered_quantity() -> None:
    """Older data (or a query without the field) still sends every product, at the quantity ordered."""
    node = order(44, updated="2026-11-20T10:00:00Z", items=2)
    for item in node["lineItems"]:
        del item["currentQuantity"]
    node["lineItems"] = {"nodes": node["lineItems"]}  # the fake stores connections as lists; Shopify answers nodes
    record = map_order(node, MappingOptions())
    assert record.order is not None and [(p.sku, p.quantity) for p in record.order.products] == [("SKU-44-0", 1), ("SKU-44-1", 2)]


@pytest.mark.parametrize("full_sync", [False, True])
def test_test_and_cancelled_orders_are_not_sent_unless_asked(
    shop: FakeShopify, make_adapter: MakeAdapter, full_sync: bool
) -> None:
    """Karla treats every order as live and runs placed-order campaigns for it: a checkout tested with the
    Bogus Gateway or a cancelled order would reach real customers' campaigns. Closed orders are sent."""
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z", closedAt="2026-11-20T10:00:00Z"))
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z", cancelledAt="2026-11-20T10:00:01Z"))
    shop.add_order(order(3, updated="2026-11-20T10:00:02Z", test=True))
    pages, cursor = read(make_adapter(recheck_unfulfilled_days=0, full_sync=full_sync))
    assert keys(pages) == ["1001"]
    assert full_sync or json.loads(cursor or "{}")["updated_at"] == "2026-11-20T10:00:02Z", "skipped, not lost"
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0, full_sync=full_sync, skip_test_orders=False, skip_cancelled=False))
    assert sorted(keys(pages)) == ["1001", "1002", "1003"]


def test_the_skip_settings_are_validated() -> None:
    base = {"type": "shopify", "shop_domain": "karla-test.myshopify.com", "access_token": "t"}
    config = ShopifyConfig(**base)
    assert (config.skip_test_orders, config.skip_cancelled) == (True, True)
    with pytest.raises(ValidationError):
        ShopifyConfig(**base, skip_cancelled="sometimes")


def test_a_plain_http_api_base_url_is_refused_except_on_loopback() -> None:
    """The access token goes with every request: an http:// proxy across a network would carry it in clear."""
    base = {"type": "shopify", "shop_domain": "karla-test.myshopify.com", "access_token": "t"}
    assert ShopifyConfig(**base, api_base_url="http://127.0.0.1:8080").base_url == "http://127.0.0.1:8080"
    assert ShopifyConfig(**base, api_base_url="https://proxy.example").base_url == "https://proxy.example"
    with pytest.raises(ValidationError, match=r"http:// only for 127.0.0.1"):
        ShopifyConfig(**base, api_base_url="http://proxy.example:8080")
