"""The Shopify adapter against a fake Admin GraphQL server that executes Shopify's own schema."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any

import pytest

from adapters.base import AdapterContext, Page
from adapters.shopify import ShopifyAdapter, ShopifyConfig
from adapters.shopify.queries import BULK_RUN, BULK_STATUS, ORDERS, SHOP_CHECK, bulk_orders_query
from adapters.testing import AdapterContract
from connector.errors import ConfigError
from connector.karla.models import dump
from tests.shopifysource.conftest import fulfillment, make_order
from tests.shopifysource.fake_shopify import FakeClock, FakeShopify, schema

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def adapter(shop: FakeShopify, clock: FakeClock, *, full: bool = False, now: datetime = NOW, **config: Any) -> ShopifyAdapter:
    options = {"shop_domain": "fake.myshopify.com", "api_base_url": shop.url, "access_token": "shpat_test_token",
               "full_sync_since": date(2026, 1, 1), "recheck_days": 0, **config}
    context = AdapterContext(source="shop", clock=lambda: now, full_sync=full)
    return ShopifyAdapter("shop", ShopifyConfig.model_validate(options), context, sleep=clock.sleep, monotonic=clock.monotonic)


def keys(pages: list[Page]) -> list[str]:
    return [r.key for p in pages for r in p.records]


@pytest.mark.parametrize("document", [ORDERS, SHOP_CHECK, BULK_RUN, BULK_STATUS, "{" + bulk_orders_query("x").split("{", 1)[1]])
def test_every_query_validates_against_shopifys_schema(document: str) -> None:
    from graphql import parse, validate

    assert validate(schema(), parse(document)) == []


def test_no_order_lost_or_split_at_equal_timestamps(shop: FakeShopify, clock: FakeClock) -> None:
    for n in range(40):  # ten pages' worth of orders sharing one timestamp
        shop.put(make_order(n, updated="2026-11-20T10:00:00Z"))
    for n in range(40, 46):
        shop.put(make_order(n, updated="2026-11-21T10:00:00Z"))
    pages = list(adapter(shop, clock, page_size=4).read("orders", None))
    assert len(set(keys(pages))) == 46
    for index, page in enumerate(pages):  # a crash after any page resumes without losing anything
        resumed = keys(list(adapter(shop, clock, page_size=4).read("orders", page.cursor)))
        done = set(keys(pages[: index + 1]))
        assert done | set(resumed) == set(keys(pages)), f"lost after page {index}"


def test_orders_updated_while_paging_are_read_next_time(shop: FakeShopify, clock: FakeClock) -> None:
    for n in range(100):
        shop.put(make_order(n, updated=f"2026-11-20T10:{n // 60:02d}:{n % 60:02d}Z"))

    def touch_first(fake: FakeShopify, served: int) -> None:
        if served == 1:  # between page 1 and 2, order 0 (already read) is edited
            fake.put(make_order(0, updated="2026-11-23T11:50:00Z", email="new@example.com"))

    shop.before_page = touch_first
    pages = list(adapter(shop, clock, page_size=4).read("orders", None))
    assert len(set(keys(pages))) == 100
    shop.before_page = None
    later = list(adapter(shop, clock, now=datetime(2026, 11, 23, 13, 0, tzinfo=timezone.utc)).read("orders", pages[-1].cursor))
    assert "1000" in keys(later)
    assert [r.order.email_id for p in later for r in p.records if r.key == "1000"] == ["new@example.com"]  # type: ignore[union-attr]


def test_lag_leaves_orders_still_being_written(shop: FakeShopify, clock: FakeClock) -> None:
    shop.put(make_order(1, updated="2026-11-23T11:59:30Z"))
    assert keys(list(adapter(shop, clock, lag_seconds=60).read("orders", None))) == []
    assert keys(list(adapter(shop, clock, lag_seconds=0).read("orders", None))) == ["1001"]


def test_tracking_added_later_without_order_update_is_caught_by_recheck(shop: FakeShopify, clock: FakeClock) -> None:
    shop.put(make_order(1, fulfillments=[fulfillment(91, [])]))
    first = adapter(shop, clock, recheck_days=14)
    orders = list(first.read("orders", None))
    recheck = list(first.read("recheck", None))
    assert [len(r.trackings) for p in orders for r in p.records] == [0]
    order = make_order(1, fulfillments=[fulfillment(91, ["00340434"])])  # same updatedAt: Shopify did not bump it
    shop.put(order)
    assert keys(list(adapter(shop, clock).read("orders", orders[-1].cursor))) == ["1001"]  # inclusive bound re-reads...
    soon = adapter(shop, clock, recheck_days=14, now=NOW.replace(minute=30))
    assert list(soon.read("recheck", recheck[-1].cursor)) == []  # interval not yet over
    later = adapter(shop, clock, recheck_days=14, now=NOW.replace(hour=14))
    found = [t.tracking_number for p in later.read("recheck", recheck[-1].cursor) for r in p.records for t in r.trackings]
    assert found == ["00340434"]


def test_mapping_field_by_field(shop: FakeShopify, clock: FakeClock) -> None:
    shop.put(make_order(7, discountCodes=["WELCOME10"], totalDiscountsSet={"shopMoney": {"amount": "10.00"}}, fulfillments=[
        fulfillment(81, ["H1", "H2"], company="Hermes", skus=["SKU-7-A"]),
        fulfillment(82, ["C1"], status="CANCELLED"),
        fulfillment(83, ["U1"], company="Kiala Express", skus=["SKU-7-B"]),
    ]))
    (record,) = [r for p in adapter(shop, clock, segment_prefix="shopify.").read("orders", None) for r in p.records]
    order = dump(record.order)  # type: ignore[arg-type]
    assert (record.key, order["order_number"], order["order_name"], order["external_id"]) == ("1007", "1007", "#1007", "5007")
    assert order["email_id"] == "kunde7@example.com" and order["currency"] == "EUR" and order["external_customer_id"] == "777"
    assert (order["total_order_price"], order["sub_total_price"], order["shipping_price"], order["discount_price"]) == (59.9, 55.0, 4.9, 10.0)
    assert order["discounts"] == [{"code": "WELCOME10", "amount": "10.00"}] and order["segments"] == ["shopify.vip"]
    assert order["address"] == {"zip_code": "10119", "name": "Zoë Łukasiewicz", "address_line_1": "Torstraße 1", "street": "Torstraße 1",
                                "city": "Berlin", "province": "Berlin", "province_code": "BE", "country": "Germany", "country_code": "DE"}
    assert order["products"][0] == {"title": "Wanderstiefel „Alp“", "sku": "SKU-7-A", "quantity": 1, "price": 45.0,
                                    "images": [{"src": "https://cdn.example/a.png", "alt": "Wanderstiefel „Alp“"}]}
    assert order["order_status_url"].endswith("/status/7")
    parcels = {t.tracking_number: dump(t) for t in record.trackings}
    assert set(parcels) == {"H1", "H2", "U1"}  # the cancelled fulfillment is not sent
    assert parcels["H1"]["carrier_reference"] == "hrs" and parcels["H1"]["external_shipment_id"] == "81"
    assert [p["sku"] for p in parcels["H2"]["products"]] == ["SKU-7-A"]
    assert parcels["U1"]["tracking_company"] == "Kiala Express"


def test_orders_beyond_nested_limits_are_completed(shop: FakeShopify, clock: FakeClock) -> None:
    order = make_order(3, fulfillments=[fulfillment(71, ["P1"], skus=[f"S{i}" for i in range(23)])])
    order["lineItems"]["nodes"] = [dict(order["lineItems"]["nodes"][0], sku=f"S{i}") for i in range(27)]
    shop.put(order)
    (record,) = [r for p in adapter(shop, clock).read("orders", None) for r in p.records]
    assert len(record.order.products) == 27 and len(record.trackings[0].products) == 23  # type: ignore[union-attr]


def test_end_to_end_cli_to_karla(tmp_path, sandbox) -> None:  # type: ignore[no-untyped-def]
    import time as _time

    from tests.conftest import API_KEY, SLUG, cli

    class RealClock(FakeClock):
        def monotonic(self) -> float:
            return _time.monotonic()

    fake = FakeShopify(RealClock(), bucket=20000, restore_rate=10000).start()
    try:
        for n in range(3):
            fake.put(make_order(n, fulfillments=[fulfillment(60 + n, [f"Z{n}"], company="DPD")]))
        config = tmp_path / "c.toml"
        config.write_text(
            f'[karla]\nbase_url = "{sandbox.url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n[state]\npath = "{tmp_path / "s.db"}"\n'
            f'[sources.shop]\ntype = "shopify"\nshop_domain = "fake.myshopify.com"\napi_base_url = "{fake.url}"\n'
            f'full_sync_since = 2026-01-01\nrecheck_days = 30\nlag_seconds = 0\n'
        )
        result = cli(config, "sync", env={"KARLA_CONNECTOR_SOURCES__SHOP__ACCESS_TOKEN": "shpat_test_token"})
        assert result.returncode == 0, result.stderr
        karla = sandbox.orders(SLUG)
        assert set(karla) == {"1000", "1001", "1002"} and karla["1001"]["trackings"][0]["carrier_reference"] == "dpd"
        assert "shpat_test_token" not in result.stdout + result.stderr
        assert cli(config, "sync", env={"KARLA_CONNECTOR_SOURCES__SHOP__ACCESS_TOKEN": "shpat_test_token"}).stdout.count("in 0 Karla requests") == 1
    finally:
        fake.stop()


def test_order_without_zip_is_rejected_and_redacted_data_still_sent(shop: FakeShopify, clock: FakeClock) -> None:
    shop.put(make_order(1, shippingAddress=None))
    shop.put(make_order(2, email=None, updated="2026-11-20T11:00:00Z"))
    (page,) = list(adapter(shop, clock).read("orders", None))
    assert [r.key for r in page.records] == ["1002"] and page.records[0].order.email_id is None  # type: ignore[union-attr]
    assert "zip code" in page.rejected[0].reason and page.rejected[0].location == "gid://shopify/Order/5001"


def test_pacing_keeps_throttled_at_zero(clock: FakeClock) -> None:
    fake = FakeShopify(clock, bucket=1000, restore_rate=100).start()
    try:
        for n in range(600):
            fake.put(make_order(n, updated=f"2026-11-{1 + n // 100:02d}T10:00:{n % 60:02d}Z"))
        pages = list(adapter(fake, clock, page_size=4).read("orders", None))
        assert len(keys(pages)) == 600 and fake.throttled == 0
        spent = sum(entry["cost"] for entry in fake.log)
        minimum = max(0.0, (spent - 1000) / 100)  # the bucket's head start, then the restore rate
        assert sum(clock.slept) <= minimum * 1.1 + 1
    finally:
        fake.stop()


def test_throttled_and_429_wait_instead_of_hot_looping(shop: FakeShopify, clock: FakeClock) -> None:
    shop.put(make_order(1))
    shop.available = 0  # the bucket is empty when we arrive
    shop.script = [(429, 3.0)]
    a = adapter(shop, clock)
    assert keys(list(a.read("orders", None))) == ["1001"]
    assert clock.slept[0] >= 3.0 and shop.throttled == 1 and any(s > 0 for s in clock.slept[1:])


def test_client_credentials_token_is_refreshed_on_expiry(clock: FakeClock) -> None:
    fake = FakeShopify(clock, tokens=(), client=("app-id", "app-secret"), token_ttl=120).start()
    try:
        fake.put(make_order(1))
        a = adapter(fake, clock, access_token=None, client_id="app-id", client_secret="app-secret")
        assert keys(list(a.read("orders", None))) == ["1001"]
        clock.now += 500  # the token expired
        assert keys(list(a.read("orders", None))) == ["1001"] and len(fake.tokens) == 2
        with pytest.raises(ConfigError, match="client_id 'app-id' were refused"):
            list(adapter(fake, clock, access_token=None, client_id="app-id", client_secret="nope").read("orders", None))
    finally:
        fake.stop()


def test_full_sync_by_bulk_operation_and_fallback_when_busy(shop: FakeShopify, clock: FakeClock) -> None:
    for n in range(5):
        shop.put(make_order(n, fulfillments=[fulfillment(90 + n, [f"T{n}"], skus=[f"SKU-{n}-A"])]))
    bulk = [r for p in adapter(shop, clock, full=True).read("orders", None) for r in p.records]
    paged = [r for p in adapter(shop, clock).read("orders", None) for r in p.records]
    assert len(shop.bulk_results) == 1
    assert sorted((r.key, json.dumps(dump(r.order)), tuple(json.dumps(dump(t)) for t in r.trackings)) for r in bulk) == \
        sorted((r.key, json.dumps(dump(r.order)), tuple(json.dumps(dump(t)) for t in r.trackings)) for r in paged)
    shop.bulk_busy = True
    again = [r.key for p in adapter(shop, clock, full=True).read("orders", None) for r in p.records]
    assert sorted(again) == sorted(r.key for r in paged) and len(shop.bulk_results) == 1


def test_check_reports_scopes(shop: FakeShopify, clock: FakeClock) -> None:
    shop.scopes = ["read_orders"]
    facts = adapter(shop, clock).check()
    assert any("missing scope read_all_orders" in f for f in facts)
    shop.scopes = []
    with pytest.raises(ConfigError, match="read_orders"):
        adapter(shop, clock).check()


class TestShopifyContract(AdapterContract):
    secrets = ["shpat_test_token"]

    @pytest.fixture(autouse=True)
    def _shop(self, shop: FakeShopify, clock: FakeClock) -> None:
        self.shop, self.clock = shop, clock
        for n in range(12):
            shop.put(make_order(n, updated=f"2026-11-20T10:00:{n // 3:02d}Z", fulfillments=[fulfillment(n + 1, [f"T{n}"])]))

    def make_adapter(self, context: AdapterContext) -> ShopifyAdapter:
        config = ShopifyConfig(shop_domain="fake.myshopify.com", api_base_url=self.shop.url, access_token="shpat_test_token",
                               page_size=4, recheck_days=0, full_sync_since=date(2026, 1, 1))
        ctx = AdapterContext(source="shop", clock=lambda: NOW, is_seen=context.is_seen)
        return ShopifyAdapter("shop", config, ctx, sleep=self.clock.sleep, monotonic=self.clock.monotonic)

    def make_bad_adapter(self, context: AdapterContext) -> ShopifyAdapter:
        config = ShopifyConfig(shop_domain="fake.myshopify.com", api_base_url=self.shop.url, access_token="wrong")
        return ShopifyAdapter("shop", config, AdapterContext(source="shop", clock=lambda: NOW), sleep=self.clock.sleep, monotonic=self.clock.monotonic)


def test_api_version_mismatch_is_logged_once(shop: FakeShopify, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    shop.version = "2025-04"
    shop.put(make_order(1))
    a = adapter(shop, clock)
    a.client.log = logging.getLogger("shopify-test")
    with caplog.at_level(logging.WARNING, logger="shopify-test"):
        list(a.read("orders", None))
        list(a.read("orders", None))
    assert caplog.text.count("answered with API version 2025-04, not the pinned 2025-01") == 1
