"""Full sync through a bulk operation, and the fall back to paging when bulk cannot deliver."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from connector.karla.models import dump
from tests.shopify.conftest import MakeAdapter, read, records
from tests.shopify.factories import fulfillment, order
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock


@pytest.fixture()
def history(shop: FakeShopify) -> FakeShopify:
    for n in range(40):
        data = order(n, updated=f"2026-11-{10 + n % 10:02d}T10:{n:02d}:00Z", items=1 + n % 4)
        if n % 5 == 0:
            data["discountApplications"] = [{"__typename": "DiscountCodeApplication", "code": f"CODE{n}",
                                             "value": {"__typename": "PricingPercentageValue", "percentage": 15.0}}]
        if n % 2 == 0:
            data["fulfillments"] = [fulfillment(data, 7000 + n, [f"TRK{n}a", f"TRK{n}b"], items=[(0, 1)])]
        if n % 6 == 0:
            data["fulfillments"].append(fulfillment(data, 8000 + n, [f"VOID{n}"], status="CANCELLED"))
        if n == 3:
            data["lineItems"] = order(n, items=14)["lineItems"]
            data["fulfillments"] = [fulfillment(data, 7003, ["BIG"])]  # 14 parcel items: beyond the nested page
        shop.add_order(data)
    return shop


def _signatures(pages: list) -> dict[str, Any]:
    return {r.key: (dump(r.order), [dump(t) for t in r.trackings]) for r in records(pages)}


def test_bulk_full_sync_reassembles_orders_like_paging_does(history: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    paged = _signatures(read(make_adapter(full_sync=True, use_bulk_for_full_sync=False))[0])
    history.requests.clear()
    pages, _ = read(make_adapter(full_sync=True, bulk_poll_seconds=15))
    assert _signatures(pages) == paged and len(paged) == 40
    assert not history.graphql_requests("Orders"), "a bulk full sync does not page through orders"
    assert history.graphql_requests("BulkRun") and history.graphql_requests("FulfillmentLineItems")
    assert 15 in clock.slept  # polled at the configured interval
    (op,) = history.bulk.ops.values()
    assert any('"__parentId"' in line for line in op.lines), "line items came as child lines"
    big = next(r for r in records(pages) if r.key == "1003")
    assert big.order is not None and len(big.order.products) == 14 and len(big.trackings[0].products) == 14


def test_bulk_already_running_falls_back_to_paging(history: FakeShopify, make_adapter: MakeAdapter,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    history.bulk.busy = True
    caplog.set_level(logging.WARNING)
    pages, _ = read(make_adapter(full_sync=True))
    assert len(records(pages)) == 40 and history.graphql_requests("Orders")
    assert any("already in progress" in r.getMessage() and "page by page" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda bulk: setattr(bulk, "fail_with", "INTERNAL_SERVER_ERROR"), "ended FAILED"),
    (lambda bulk: setattr(bulk, "ungrouped", True), "not grouped"),
])
def test_failed_or_unreadable_bulk_results_fall_back_to_paging(
    history: FakeShopify, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture, setup: Any, reason: str
) -> None:
    setup(history.bulk)
    caplog.set_level(logging.WARNING)
    pages, _ = read(make_adapter(full_sync=True))
    assert {r.key for r in records(pages)} == {str(1000 + n) for n in range(40)}
    assert any(reason in r.getMessage() for r in caplog.records)


def test_a_bulk_operation_that_never_finishes_is_cancelled(history: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    history.bulk.polls_to_finish = 10_000
    pages, _ = read(make_adapter(full_sync=True, bulk_poll_seconds=10, bulk_timeout_seconds=30))
    assert len(records(pages)) == 40
    assert [op.status for op in history.bulk.ops.values()] == ["CANCELED"]
    assert clock.slept.count(10) == 3


def test_bulk_query_reads_the_configured_history(history: FakeShopify, make_adapter: MakeAdapter) -> None:
    read(make_adapter(full_sync=True, full_sync_since="2026-11-15"))
    (query,) = history.bulk.started
    search = json.loads(query.split("query: ", 1)[1].split(", sortKey", 1)[0])
    assert search == "updated_at:>='2026-11-15T00:00:00Z' AND updated_at:<='2026-11-20T11:59:00Z'"
