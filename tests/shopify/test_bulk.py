"""Full sync through a bulk operation, and the fall back to paging when bulk cannot deliver."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from adapters.shopify import queries
from connector.errors import Aborted
from connector.engine import record_parts
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
    (lambda bulk: setattr(bulk, "layout", "children-last"), "not grouped"),
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


@pytest.mark.parametrize("layout", ["children-last", "late-child"])
def test_an_ungrouped_file_yields_no_order_before_the_fallback(
    shop: FakeShopify, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture, layout: str
) -> None:
    """More orders than one page: with the file checked first, no page of the bulk result ever goes out.

    "children-last" would otherwise give pages of orders without products; "late-child" (one misplaced
    line at the end) complete pages that the fallback then reads a second time.
    """
    for n in range(260):
        shop.add_order(order(n, updated=f"2026-11-{10 + n % 10:02d}T10:{n % 60:02d}:{n // 60:02d}Z", items=2))
    shop.bulk.layout = layout
    caplog.set_level(logging.WARNING)
    pages, _ = read(make_adapter(full_sync=True))
    found = records(pages)
    assert all(r.order is not None and len(r.order.products) == 2 for r in found), "an order without its line items"
    assert len(found) == len({r.key for r in found}) == 260, "every order exactly once"
    assert shop.graphql_requests("Orders") and any("not grouped" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("version", "sent"), [("2025-01", None), ("2026-01", True)])
def test_grouped_output_is_asked_for_where_the_version_can(
    history: FakeShopify, make_adapter: MakeAdapter, version: str, sent: bool | None
) -> None:
    """2026-01 groups only when asked (``groupObjects`` defaults to false there); 2025-01 always groups."""
    pages, _ = read(make_adapter(full_sync=True, api_version=version))
    assert history.bulk.group_objects == [sent]
    assert len(records(pages)) == 40 and not history.graphql_requests("Orders"), "the bulk result was used"
    assert {r["version"] for r in history.requests} == {version}


def test_a_pin_that_falls_forward_still_gets_grouped_output(history: FakeShopify, make_adapter: MakeAdapter) -> None:
    """2025-01 is no longer supported: Shopify answers 2026-04, where ``groupObjects`` defaults to false.

    Chosen from the configured version, the mutation left the argument out, the file came ungrouped, was
    rejected after the whole download, and the full sync paged instead.
    """
    history.served_version = "2026-04"
    adapter = make_adapter(full_sync=True, api_version="2025-01")
    pages, _ = read(adapter)
    assert history.bulk.group_objects == [True], "asked for grouping, as the served version needs"
    assert len(records(pages)) == 40 and not history.graphql_requests("Orders"), "the bulk result was used"
    assert adapter.client.answered_version == "2026-04"


def test_the_fake_executes_the_served_version(history: FakeShopify, make_adapter: MakeAdapter) -> None:
    """Falling forward changes defaults: a 2025-01 request served as 2026-04 groups only when asked."""
    history.served_version = "2026-04"
    client = make_adapter(api_version="2025-01").client
    client.data(queries.BULK_RUN, {"query": queries.bulk_orders_query(queries.window_search("2026-01-01T00:00:00Z",
                                                                                             "2026-12-01T00:00:00Z"))})
    assert history.bulk.group_objects == [False]
    assert {r["version"] for r in history.requests} == {"2025-01"}


def test_the_fake_serves_2026_01_ungrouped_unless_asked(history: FakeShopify, make_adapter: MakeAdapter) -> None:
    """Why the adapter asks: without the argument, 2026-01 puts every child line after all orders."""
    client = make_adapter(api_version="2026-01").client
    client.data(queries.BULK_RUN, {"query": queries.bulk_orders_query(queries.window_search("2026-01-01T00:00:00Z",
                                                                                             "2026-12-01T00:00:00Z"))})
    (op,) = history.bulk.ops.values()
    history.bulk.view(op.id)
    history.bulk.view(op.id)
    assert history.bulk.group_objects == [False] and op.status == "COMPLETED"
    assert "__parentId" not in op.lines[0] and "__parentId" not in op.lines[1], "two orders first: not grouped"


def test_a_closed_read_cancels_the_running_bulk_operation(history: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    """Between status polls the adapter yields an empty page: the engine may stop there, and closing cancels."""
    history.bulk.polls_to_finish = 10_000
    pages = make_adapter(full_sync=True, bulk_poll_seconds=10).read("orders", None)
    waiting = [next(pages), next(pages)]
    assert [(p.records, p.rejected, p.cursor) for p in waiting] == [([], [], None)] * 2
    pages.close()
    assert [op.status for op in history.bulk.ops.values()] == ["CANCELED"]
    assert clock.slept.count(10) == 1, "stopped after one wait, not after bulk_timeout_seconds"


def _discounted(n: int) -> dict[str, Any]:
    """An order with more discount applications than the nested page holds, automatic ones among them."""
    data = order(n, updated="2026-11-20T10:00:00Z", items=1)
    codes = [{"__typename": "DiscountCodeApplication", "code": f"CODE{i}",
              "value": {"__typename": "MoneyV2", "amount": f"{i}.0", "currencyCode": "EUR"}} for i in range(7)]
    automatic = {"__typename": "AutomaticDiscountApplication",
                 "value": {"__typename": "PricingPercentageValue", "percentage": 5.0}}
    data["discountApplications"] = codes[:2] + [automatic] + codes[2:5] + [automatic] + codes[5:]
    return data


def test_polls_and_the_full_sync_send_the_same_order_with_many_discounts(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    """Discount applications beyond the nested page are fetched, so the payloads agree byte for byte.

    Otherwise the poll sends five applications' worth of codes, the bulk full sync all of them, and each
    run re-sends the order to Karla because it differs from what the other one sent.
    """
    shop.add_order(_discounted(5))
    (polled,) = records(read(make_adapter(recheck_unfulfilled_days=0))[0])
    followed_up = bool(shop.graphql_requests("MoreDiscounts"))
    shop.requests.clear()
    (synced,) = records(read(make_adapter(full_sync=True))[0])
    assert shop.graphql_requests("BulkRun") and not shop.graphql_requests("Orders"), "the bulk path was used"
    assert polled.order is not None and [d.code for d in polled.order.discounts] == [f"CODE{i}" for i in range(7)]
    sent = [(p.part, p.payload) for p in record_parts(polled, "shop", "orders", "s")]
    assert sent == [(p.part, p.payload) for p in record_parts(synced, "shop", "orders", "s")]
    assert followed_up, "the poll fetched the discounts beyond the nested page"


def test_a_stop_during_a_bulk_full_sync_ends_it_without_a_fallback_or_its_warning(
    history: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A shutdown while Shopify prepared the bulk result was logged as "bulk operation unavailable ... reading
    # page by page instead", and a page-by-page read was started only to stop at once.
    made: list = []
    real_sleep = clock.sleep

    def shutdown_while_waiting(seconds: float) -> None:
        made[0].context.stop.set()
        real_sleep(seconds)

    monkeypatch.setattr(clock, "sleep", shutdown_while_waiting)
    made.append(make_adapter(full_sync=True, bulk_poll_seconds=15))
    caplog.set_level(logging.WARNING)
    with pytest.raises(Aborted):
        read(made[0])
    assert not any("page by page" in r.getMessage() for r in caplog.records)
    assert not history.graphql_requests("Orders")
    assert [op.status for op in history.bulk.ops.values()] == ["CANCELED"], "cancelled although the stop refuses requests"


def test_a_sustained_outage_during_status_polls_keeps_the_operation(
    history: FakeShopify, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    """Eight 503s in a row outlast one poll's retries: the poll counts as "not finished yet", not as the end of
    an operation that may have run for hours (it was cancelled, failing too, and paging started over)."""
    history.bulk.polls_to_finish = 4
    polls = {"n": 0}

    def incident(record: dict) -> None:
        if record["operation"] == "BulkStatus":
            polls["n"] += 1
            if polls["n"] == 2:
                history.outage(8)

    history.on_request = incident
    caplog.set_level(logging.WARNING)
    pages, _ = read(make_adapter(full_sync=True, bulk_poll_seconds=60))
    assert len(records(pages)) == 40 and not history.graphql_requests("Orders"), "the bulk result, not paging"
    assert [op.status for op in history.bulk.ops.values()] == ["COMPLETED"] and not history.graphql_requests("BulkCancel")
    assert sum(r["status"] == 503 for r in history.requests) == 8
    assert any("status poll failed" in r.getMessage() for r in caplog.records)


def test_an_outage_until_the_timeout_still_cancels_and_pages(history: FakeShopify, make_adapter: MakeAdapter) -> None:
    """A failed poll uses up one of ``max_polls``; at the timeout the cancel is retried through the outage."""
    history.bulk.polls_to_finish = 10_000
    outages = iter([6, 3])  # poll 2 fails for good; the cancel after poll 3 meets three more 503s

    def incident(record: dict) -> None:
        if record["operation"] == "BulkStatus":
            history.outage(next(outages, 0))

    history.on_request = incident
    pages, _ = read(make_adapter(full_sync=True, bulk_poll_seconds=10, bulk_timeout_seconds=30))
    assert len(records(pages)) == 40 and history.graphql_requests("Orders")
    assert len(history.graphql_requests("BulkStatus")) == 2 and sum(r["status"] == 503 for r in history.requests) == 9
    assert [op.status for op in history.bulk.ops.values()] == ["CANCELED"]


def test_a_failing_result_download_is_retried(history: FakeShopify, make_adapter: MakeAdapter) -> None:
    history.bulk.failing_downloads = 2
    pages, _ = read(make_adapter(full_sync=True))
    assert len(records(pages)) == 40 and not history.graphql_requests("Orders")
    assert history.bulk.downloads == 3
