"""The Shopware adapter against a fake Admin API with the real one's traps and concurrent writes."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from adapters.base import AdapterContext, Page, Record
from adapters.shopware import ShopwareAdapter, ShopwareConfig
from adapters.testing import AdapterContract
from connector.errors import ConfigError
from connector.karla.models import dump
from tests.shopwaresource.fake_shopware import FakeShopware


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.now.timestamp()

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _state(name: str) -> dict[str, str]:
    return {"technicalName": name, "apiAlias": "state_machine_state"}


def _address(zip_code: str = "10119", first: str = "Zoë") -> dict[str, Any]:
    return {"id": "addr-" + zip_code, "apiAlias": "order_address", "firstName": first, "lastName": "Łukasiewicz", "company": None,
            "street": "Torstraße 1", "additionalAddressLine1": "2. OG", "zipcode": zip_code, "city": "Berlin", "phoneNumber": None,
            "country": {"iso": "DE", "name": "Germany", "apiAlias": "country"},
            "countryState": {"shortCode": "DE-BE", "name": "Berlin", "apiAlias": "country_state"}}


def _item(ident: str, sku: str, qty: int, price: float, kind: str = "product", **extra: Any) -> dict[str, Any]:
    return {"id": ident, "apiAlias": "order_line_item", "type": kind, "parentId": None, "label": f"Artikel {sku}", "quantity": qty,
            "unitPrice": price, "totalPrice": round(qty * price, 2), "payload": {"productNumber": sku}, "referencedId": ident,
            "cover": {"url": f"https://cdn.example/{sku}.png", "alt": None, "apiAlias": "media"}, **extra}


def make_order(number: int, state: str = "in_progress", deliveries: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    items = [_item(f"li-{number}-a", f"SW-{number}-A", 2, 10.0), _item(f"li-{number}-b", f"SW-{number}-B", 1, 25.0)]
    order = {
        "apiAlias": "order", "orderNumber": str(10000 + number), "orderDateTime": "2026-11-20T09:15:00.000+00:00",
        "amountTotal": 49.9, "shippingTotal": 4.9, "salesChannelId": "sc-main", "billingAddressId": "addr-99999",
        "lineItems": items, "addresses": [_address("99999", "Billing")], "stateMachineState": _state(state),
        "orderCustomer": {"apiAlias": "order_customer", "email": f"k{number}@example.com", "customerNumber": f"C{number}",
                          "customer": {"guest": False, "apiAlias": "customer"}},
        "currency": {"isoCode": "EUR", "apiAlias": "currency"},
        "deliveries": deliveries if deliveries is not None else [delivery(items)],
    }
    order.update(extra)
    return order


def delivery(items: list[dict[str, Any]], codes: list[str] | None = None, state: str = "open", zip_code: str = "10119",
             method: str = "DHL Paket", positions: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    pos = positions or [(i, item["quantity"]) for i, item in enumerate(items)]
    return {"id": f"dl-{codes[0] if codes else id(items)}", "apiAlias": "order_delivery", "trackingCodes": codes or [],
            "stateMachineState": _state(state), "shippingOrderAddress": _address(zip_code),
            "shippingMethod": {"name": method, "trackingUrl": "https://track.example/?code=%s", "technicalName": "dhl", "apiAlias": "shipping_method"},
            "positions": [{"id": f"p{i}", "quantity": q, "orderLineItem": items[i], "apiAlias": "order_delivery_position"} for i, q in pos]}


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def shop(clock: Clock) -> Iterator[FakeShopware]:
    fake = FakeShopware(now=clock).start()
    yield fake
    fake.stop()


def adapter(shop: FakeShopware, clock: Clock, **config: Any) -> ShopwareAdapter:
    options = {"base_url": shop.url, "client_id": "SWIAFAKE", "client_secret": "sw-s3cr3t-value", "lag_seconds": 0, "overlap_seconds": 60,
               "initial_days": 30, **config}
    return ShopwareAdapter("sw", ShopwareConfig.model_validate(options), AdapterContext(source="sw", clock=clock),
                           sleep=clock.sleep, monotonic=clock.monotonic)


def records(pages: list[Page]) -> dict[str, Record]:
    return {r.key: r for p in pages for r in p.records}


def test_mapping_field_by_field_with_two_deliveries_and_promotions(shop: FakeShopware, clock: Clock) -> None:
    order = make_order(1)
    items = order["lineItems"]
    order["lineItems"] = [*items, _item("li-promo", "x", 1, -5.0, kind="promotion", payload={"code": "HERBST5", "discountType": "absolute"}),
                          _item("li-child", "SW-CHILD", 1, 0.0, parentId="li-1-a")]
    order["deliveries"] = [delivery(items, ["H1", "H2"], "shipped", "80331", "Hermes", positions=[(0, 1)]),
                           delivery(items, ["G1"], "shipped_partially", "80331", "Kiala Express", positions=[(0, 1), (1, 1)])]
    shop.insert(order, at=clock.now - timedelta(hours=1))
    (record,) = records(list(adapter(shop, clock).read("orders", None))).values()
    placed = dump(record.order)  # type: ignore[arg-type]
    assert (record.key, placed["external_id"], placed["order_placed_at"]) == ("10001", order["id"], "2026-11-20T09:15:00Z")
    assert (placed["total_order_price"], placed["shipping_price"], placed["sub_total_price"], placed["discount_price"]) == (49.9, 4.9, 45.0, 5.0)
    assert placed["discounts"] == [{"code": "HERBST5", "amount": "-5.0", "type": "absolute"}]
    assert placed["email_id"] == "k1@example.com" and placed["external_customer_id"] == "C1" and placed["currency"] == "EUR"
    assert placed["address"]["zip_code"] == "80331" and placed["address"]["province_code"] == "BE"  # the delivery's address
    assert [p["sku"] for p in placed["products"]] == ["SW-1-A", "SW-1-B"]  # top-level products only
    assert placed["products"][0]["images"] == [{"src": "https://cdn.example/SW-1-A.png", "alt": "Artikel SW-1-A"}]
    parcels = {t.tracking_number: dump(t) for t in record.trackings}
    assert set(parcels) == {"H1", "H2", "G1"}
    assert parcels["H1"]["carrier_reference"] == "hrs" and parcels["H1"]["tracking_url"] == "https://track.example/?code=H1"
    assert parcels["H1"]["products"] == [{"sku": "SW-1-A", "title": "Artikel SW-1-A", "quantity": 1, "images": []}]  # position quantity, not 2
    assert parcels["G1"]["tracking_company"] == "Kiala Express" and len(parcels["G1"]["products"]) == 2


def test_nothing_skipped_or_duplicated_under_concurrent_writes(shop: FakeShopware, clock: Clock) -> None:
    rng = random.Random(5)
    for n in range(120):
        shop.insert(make_order(n), at=clock.now - timedelta(minutes=rng.randint(5, 600)))

    def writes(fake: FakeShopware, served: int) -> None:  # between page requests: new orders and edits
        fake.insert(make_order(1000 + served), at=clock.now)
        victim = rng.choice(list(fake.orders))
        fake.update(victim, at=clock.now, amountTotal=99.0)

    shop.before_search = writes
    seen: dict[str, int] = {}
    cursor = None
    for _ in range(4):  # successive polls
        pages = list(adapter(shop, clock, page_size=25).read("orders", cursor))
        for key in (r.key for p in pages for r in p.records):
            seen[key] = seen.get(key, 0) + 1
        cursor = pages[-1].cursor
        clock.now += timedelta(minutes=5)
        within_one_read = [r.key for p in pages for r in p.records]
        assert len(within_one_read) == len(set(within_one_read))  # no duplicates inside a read
    shop.before_search = None
    for key in (r.key for p in adapter(shop, clock, page_size=25).read("orders", cursor) for r in p.records):
        seen[key] = seen.get(key, 0) + 1  # one quiet poll picks up what was written during the last one
    final = {o["orderNumber"] for o in shop.orders.values()}
    assert final <= set(seen), sorted(final - set(seen))[:5]


def test_a_late_tracking_code_reaches_the_records(shop: FakeShopware, clock: Clock) -> None:
    order = shop.insert(make_order(2, state="completed"), at=clock.now - timedelta(hours=2))
    first = list(adapter(shop, clock).read("orders", None))
    assert records(first)["10002"].trackings == []
    clock.now += timedelta(minutes=10)
    shop.add_tracking_code(order["id"], "00340434161", at=clock.now - timedelta(minutes=2))
    assert order["updatedAt"] is None  # the order itself did not change
    clock.now += timedelta(minutes=5)
    later = records(list(adapter(shop, clock).read("orders", first[-1].cursor)))
    assert [t.tracking_number for t in later["10002"].trackings] == ["00340434161"]


def test_state_filters(shop: FakeShopware, clock: Clock) -> None:
    items = make_order(0)["lineItems"]
    shop.insert(make_order(3, state="open"), at=clock.now - timedelta(hours=1))
    shop.insert(make_order(4, state="cancelled", deliveries=[delivery(items, ["X1"], "cancelled")]), at=clock.now - timedelta(hours=1))
    shop.insert(make_order(5, state="open", deliveries=[delivery(items, ["S1"], "shipped")]), at=clock.now - timedelta(hours=1))
    shop.insert(make_order(6, state="completed", deliveries=[delivery(items, ["R1"], "returned")]), at=clock.now - timedelta(hours=1))
    got = records(list(adapter(shop, clock).read("orders", None)))
    assert set(got) == {"10005", "10006"}  # open order without shipment: not sent; a shipped delivery: sent anyway
    assert [t.tracking_number for t in got["10005"].trackings] == ["S1"] and got["10006"].trackings == []
    only_completed = records(list(adapter(shop, clock, order_states=["completed"], delivery_states=["returned"]).read("orders", None)))
    assert [t.tracking_number for t in only_completed["10006"].trackings] == ["R1"]


def test_token_is_cached_renewed_before_expiry_and_once_on_401(shop: FakeShopware, clock: Clock) -> None:
    for n in range(30):
        shop.insert(make_order(n), at=clock.now - timedelta(hours=1))
    a = adapter(shop, clock, page_size=5)
    assert len(records(list(a.read("orders", None)))) == 30 and shop.token_requests == 1
    clock.now += timedelta(seconds=500)  # 80 % of 600 s: renewed proactively
    list(a.read("orders", None))
    assert shop.token_requests == 2
    shop.tokens.clear()  # revoked server-side: one retry with a fresh token
    list(a.read("orders", None))
    assert shop.token_requests == 3
    shop.client = ("SWIAFAKE", "rotated-elsewhere")
    shop.tokens.clear()
    with pytest.raises(ConfigError, match="SWIAFAKE"):
        list(a.read("orders", None))


def test_limit_exceeded_shrinks_the_page(shop: FakeShopware, clock: Clock) -> None:
    shop.max_limit = 40
    for n in range(90):
        shop.insert(make_order(n), at=clock.now - timedelta(hours=1))
    a = adapter(shop, clock, page_size=100)
    assert len(records(list(a.read("orders", None)))) == 90 and a.page_size == 25


def test_sales_channel_routing_and_check(shop: FakeShopware, clock: Clock) -> None:
    shop.insert(make_order(7, salesChannelId="sc-at"), at=clock.now - timedelta(hours=1))
    (record,) = records(list(adapter(shop, clock, sales_channels={"sc-at": "shop-austria"}).read("orders", None))).values()
    assert record.shop_slug == "shop-austria"
    facts = adapter(shop, clock).check()
    assert facts[0].startswith("Shopware 6.6.7.1")


def test_header_trap_and_retry_on_5xx(shop: FakeShopware, clock: Clock) -> None:
    import httpx

    shop.insert(make_order(8), at=clock.now - timedelta(hours=1))
    token = httpx.post(f"{shop.url}/api/oauth/token", json={"grant_type": "client_credentials", "client_id": "SWIAFAKE",
                                                           "client_secret": "sw-s3cr3t-value"}).json()["access_token"]
    lazy = httpx.post(f"{shop.url}/api/search/order", json={"limit": 1}, headers={"Authorization": f"Bearer {token}", "Accept": "*/*"})
    assert lazy.headers["Content-Type"] == "application/vnd.api+json" and "attributes" in lazy.json()["data"][0]
    shop.script = [503, 502]
    a = adapter(shop, clock)
    assert set(records(list(a.read("orders", None)))) == {"10008"} and shop.script == []  # both failures retried


def test_end_to_end_cli_to_karla(tmp_path, sandbox) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import API_KEY, SLUG, cli

    fake = FakeShopware(now=lambda: datetime.now(timezone.utc)).start()
    try:
        items = make_order(0)["lineItems"]
        fake.insert(make_order(9, deliveries=[delivery(items, ["DHL9"], "shipped")]), at=datetime.now(timezone.utc) - timedelta(hours=1))
        config = tmp_path / "c.toml"
        config.write_text(
            f'[karla]\nbase_url = "{sandbox.url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n[state]\npath = "{tmp_path / "s.db"}"\n'
            f'[sources.sw]\ntype = "shopware"\nbase_url = "{fake.url}"\nclient_id = "SWIAFAKE"\nlag_seconds = 0\n'
        )
        env = {"KARLA_CONNECTOR_SOURCES__SW__CLIENT_SECRET": "sw-s3cr3t-value"}
        result = cli(config, "sync", env=env)
        assert result.returncode == 0, result.stderr
        order = sandbox.orders(SLUG)["10009"]
        assert order["trackings"][0]["carrier_reference"] == "dhl" and order["address"]["zip_code"] == "10119"
        assert "sw-s3cr3t-value" not in result.stdout + result.stderr
    finally:
        fake.stop()


class TestShopwareContract(AdapterContract):
    secrets = ["sw-s3cr3t-value"]

    @pytest.fixture(autouse=True)
    def _shop(self, shop: FakeShopware, clock: Clock) -> None:
        self.shop, self.clock = shop, clock
        for n in range(11):
            shop.insert(make_order(n, deliveries=[delivery(make_order(n)["lineItems"], [f"T{n}"], "shipped")]), at=clock.now - timedelta(hours=1))

    def make_adapter(self, context: AdapterContext) -> ShopwareAdapter:
        return adapter(self.shop, self.clock, page_size=4)

    def make_bad_adapter(self, context: AdapterContext) -> ShopwareAdapter:
        return adapter(self.shop, self.clock, client_secret="wrong")
