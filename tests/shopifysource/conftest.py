from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.shopifysource.fake_shopify import FakeClock, FakeShopify


def make_order(n: int, updated: str = "2026-11-20T10:00:00Z", *, fulfillments: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    order = {
        "id": f"gid://shopify/Order/{5000 + n}", "legacyResourceId": str(5000 + n), "name": f"#{1000 + n}",
        "email": f"kunde{n}@example.com", "createdAt": "2026-11-19T08:00:00Z", "updatedAt": updated, "cancelledAt": None,
        "closedAt": None, "currencyCode": "EUR", "tags": ["vip"], "statusPageUrl": f"https://fake.myshopify.com/status/{n}",
        "discountCodes": [], "totalPriceSet": {"shopMoney": {"amount": "59.90"}}, "subtotalPriceSet": {"shopMoney": {"amount": "55.00"}},
        "totalShippingPriceSet": {"shopMoney": {"amount": "4.90"}}, "totalDiscountsSet": {"shopMoney": {"amount": "0.0"}},
        "customer": {"legacyResourceId": "777"},
        "shippingAddress": {"name": "Zoë Łukasiewicz", "company": None, "address1": "Torstraße 1", "address2": "", "city": "Berlin",
                            "province": "Berlin", "provinceCode": "BE", "zip": "10119", "country": "Germany", "countryCodeV2": "DE", "phone": None},
        "lineItems": {"nodes": [
            {"sku": f"SKU-{n}-A", "title": "Wanderstiefel „Alp“", "quantity": 1, "originalUnitPriceSet": {"shopMoney": {"amount": "45.00"}}, "image": {"url": "https://cdn.example/a.png"}},
            {"sku": f"SKU-{n}-B", "title": "Socken", "quantity": 2, "originalUnitPriceSet": {"shopMoney": {"amount": "5.00"}}, "image": None},
        ]},
        "fulfillments": fulfillments or [],
    }
    order.update(extra)
    return order


def fulfillment(fid: int, numbers: list[str], company: str = "DHL Express", status: str = "SUCCESS", skus: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Fulfillment/{fid}", "legacyResourceId": str(fid), "status": status, "createdAt": "2026-11-21T09:00:00Z",
        "trackingInfo": [{"number": n, "company": company, "url": f"https://track.example/{n}"} for n in numbers],
        "fulfillmentLineItems": {"nodes": [{"quantity": 1, "lineItem": {"sku": s, "title": s}} for s in skus or []]},
    }


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def shop(clock: FakeClock) -> Iterator[FakeShopify]:
    fake = FakeShopify(clock).start()
    yield fake
    fake.stop()
