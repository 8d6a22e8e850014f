"""The fake itself honours the Criteria features the adapter relies on (else the adapter tests prove little)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.shopware import factory as f
from tests.shopware.conftest import CLIENT_ID, SECRET, Clock
from tests.shopware.fake_server import FakeShopware


@pytest.fixture()
def search(shop: FakeShopware, clock: Clock) -> Iterator[Any]:
    for n in range(6):
        order = shop.insert(f.order(str(n), status="completed" if n % 2 else "open"), at=clock.now - timedelta(hours=6 - n))
        if n == 1:
            shop.add_tracking_code(order["deliveries"][0]["id"], "LATE", at=clock.now - timedelta(minutes=5))
    token = httpx.post(f"{shop.url}/api/oauth/token", json={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                                           "client_secret": SECRET}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    with httpx.Client(base_url=shop.url, headers=headers) as http:
        yield lambda criteria: http.post("/api/search/order", json=criteria)


def numbers(response: httpx.Response) -> list[str]:
    return [row["orderNumber"] for row in response.json()["data"]]


def test_filters(search: Any, clock: Clock) -> None:
    since = (clock.now - timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S.000")
    assert numbers(search({"filter": [{"type": "equals", "field": "orderNumber", "value": "3"}]})) == ["3"]
    assert numbers(search({"filter": [{"type": "equalsAny", "field": "orderNumber", "value": ["1", "4"]}]})) == ["1", "4"]
    nested = {"type": "range", "field": "deliveries.updatedAt", "parameters": {"gte": since}}
    assert numbers(search({"filter": [nested]})) == ["1"]  # the order row itself is untouched
    both = {"type": "multi", "operator": "AND", "queries": [
        {"type": "equals", "field": "stateMachineState.technicalName", "value": "completed"},
        {"type": "range", "field": "autoIncrement", "parameters": {"gt": 2, "lt": 6}}]}
    assert numbers(search({"filter": [both]})) == ["3"]  # completed: 1, 3, 5; autoIncrement 3..5: 2, 3, 4
    either = {"type": "multi", "operator": "OR", "queries": [nested, {"type": "equals", "field": "orderNumber", "value": "0"}]}
    assert numbers(search({"filter": [either]})) == ["0", "1"]
    assert numbers(search({"filter": [{"type": "range", "field": "updatedAt", "parameters": {"gte": "2000-01-01 00:00:00.000"}}]})) == []
    iso = search({"filter": [{"type": "range", "field": "createdAt", "parameters": {"gte": "2026-11-23T00:00:00+00:00"}}]})
    assert iso.status_code == 500  # like MariaDB, which rejects an offset in a datetime literal


def test_sort_paging_and_total_count(search: Any) -> None:
    desc = {"sort": [{"field": "autoIncrement", "order": "DESC"}], "limit": 2}
    assert numbers(search(desc | {"page": 2})) == ["3", "2"]
    assert search(desc | {"total-count-mode": "exact"}).json()["total"] == 6
    assert search(desc | {"total-count-mode": 0}).json()["total"] == 2
    refused = search({"limit": 501}).json()["errors"][0]
    assert refused["code"] == "FRAMEWORK__QUERY_LIMIT_EXCEEDED" and refused["meta"]["parameters"]["maxLimit"] == 500


def test_associations_and_includes(search: Any) -> None:
    bare = search({"limit": 1}).json()["data"][0]
    assert bare["deliveries"] is None and bare["lineItems"] is None and bare["updatedAt"] is None
    shaped = search({"limit": 1, "associations": {"deliveries": {"associations": {"shippingMethod": {}}}},
                     "includes": {"order": ["orderNumber", "deliveries"], "order_delivery": ["trackingCodes", "shippingMethod"],
                                  "shipping_method": ["name"]}}).json()["data"][0]
    assert shaped == {"orderNumber": "0", "apiAlias": "order", "deliveries": [
        {"trackingCodes": [], "apiAlias": "order_delivery", "shippingMethod": {"name": "DHL Paket", "apiAlias": "shipping_method"}}]}


def test_tokens_expire_on_the_shops_clock(shop: FakeShopware, clock: Clock, search: Any) -> None:
    assert search({"limit": 1}).status_code == 200
    clock.advance(seconds=601)
    expired = search({"limit": 1})
    assert expired.status_code == 401 and expired.json()["errors"][0]["code"] == "9"
    assert httpx.get(f"{shop.url}/api/_info/version", headers={"Accept": "application/json"}).status_code == 401
