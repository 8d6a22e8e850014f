"""Incremental reads: no order lost or split at equal timestamps, changes while paging, lag, restarts."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

import adapters.shopify.adapter as adapter_module
from adapters.base import AdapterContext, Page
from adapters.shopify import ShopifyAdapter, ShopifyConfig
from adapters.shopify.cursor import parse_time
from adapters.testing import AdapterContract
from tests.shopify.conftest import MakeAdapter, keys, read, records
from tests.shopify.factories import fulfillment, order, order_gid
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock

TIE = "2026-11-20T10:00:00Z"


def _orders_at(shop: FakeShopify, numbers: range, updated: str) -> None:
    for n in numbers:
        shop.add_order(order(n, updated=updated))


@pytest.mark.parametrize("lookback", [0, 300])
def test_no_order_lost_or_split_at_equal_timestamps(shop: FakeShopify, make_adapter: MakeAdapter, lookback: int) -> None:
    shop.add_order(order(900, updated="2026-11-20T09:59:50Z"))
    _orders_at(shop, range(300), TIE)
    shop.add_order(order(901, updated="2026-11-20T10:00:10Z"))
    settings = {"page_size": 50, "recheck_unfulfilled_days": 0, "lookback_seconds": lookback}
    pages, final = read(make_adapter(**settings))
    everything = set(keys(pages))
    assert len(everything) == 302 and len(keys(pages)) == 302
    tie_ids = [int(r.location.split()[0].rsplit("/", 1)[-1]) for r in records(pages) if r.cursor == TIE]
    assert tie_ids != sorted(tie_ids), "the fake must not order ties by id, or this test proves nothing"

    resumed_from: dict[str | None, set[str]] = {}  # a read depends only on its cursor: read each one once
    for index, page in enumerate(pages):  # the engine crashed right after committing this page
        done = set(keys(pages[: index + 1]))
        position = json.loads(page.cursor or "{}")
        if position.get("updated_at") == TIE:
            assert {str(1000 + n) for n in range(300)} <= done, "checkpoint inside a tie group"
        if page.cursor not in resumed_from:
            resumed_from[page.cursor] = set(keys(read(make_adapter(**settings), page.cursor)[0]))
        assert done | resumed_from[page.cursor] == everything, f"resuming after page {index} lost orders"

    assert json.loads(final or "{}")["updated_at"] == "2026-11-20T10:00:10Z"
    again, _ = read(make_adapter(**settings), final)
    since = _at(final) - timedelta(seconds=lookback)
    overlap = {o["name"][1:] for o in shop.store.orders.values() if parse_time(o["updatedAt"]) >= since}
    assert sorted(keys(again)) == sorted(overlap if lookback else [])  # only the lookback is read again, once


def test_cursor_names_the_last_fully_read_order(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z"))
    shop.add_order(order(2, updated="2026-11-20T10:00:00Z"))
    _, cursor = read(make_adapter(recheck_unfulfilled_days=0))
    assert json.loads(cursor or "{}") == {"updated_at": "2026-11-20T10:00:00Z", "id": order_gid(2)}


def test_orders_updated_while_paging_are_read_next_time(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    for n in range(40):
        shop.add_order(order(n, updated=f"2026-11-20T10:{n:02d}:00Z"))
    adapter = make_adapter(recheck_unfulfilled_days=0)
    pages = adapter.read("orders", None)
    first = next(pages)
    assert "1000" in keys([first])
    shop.store.update(order_gid(0), tags=["updated-after-read"])
    shop.store.update(order_gid(30), tags=["updated-while-paging"])
    rest = list(pages)
    seen = keys([first, *rest])
    assert len(seen) == len(set(seen)) == 39 and "1030" not in seen  # it moved beyond this read's window
    cursor = next(p.cursor for p in reversed(rest) if p.cursor)

    clock.advance(61)  # past the lag
    again, _ = read(make_adapter(recheck_unfulfilled_days=0, lookback_seconds=0), cursor)  # just what moved
    changed = {r.key: r.order.segments for r in records(again) if r.order}
    assert changed == {"1000": ["updated-after-read"], "1030": ["updated-while-paging"]}


def test_orders_still_being_written_wait_for_the_lag(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    shop.add_order(order(1, updated="2026-11-20T11:00:00Z"))
    shop.add_order(order(2), updated=clock.now())  # updated just now
    first, cursor = read(make_adapter(recheck_unfulfilled_days=0))
    assert keys(first) == ["1001"]
    clock.advance(61)
    second, _ = read(make_adapter(recheck_unfulfilled_days=0, lookback_seconds=0), cursor)
    assert keys(second) == ["1002"]


def test_first_run_starts_sixty_days_back_or_at_full_sync_since(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    read(make_adapter(recheck_unfulfilled_days=0))
    read(make_adapter(recheck_unfulfilled_days=0, full_sync_since="2026-11-01"))
    assert shop.searches == [
        "updated_at:>='2026-09-21T12:00:00Z' AND updated_at:<='2026-11-20T11:59:00Z'",
        "updated_at:>='2026-11-01T00:00:00Z' AND updated_at:<='2026-11-20T11:59:00Z'",
    ]


def test_long_windows_restart_the_search_before_shopifys_pagination_cap(
    shop: FakeShopify, make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter_module, "RESTART_AFTER", 20)
    for n in range(60):
        shop.add_order(order(n, updated=f"2026-11-20T10:{n // 3:02d}:00Z"))  # groups of three ties
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0))
    assert sorted(keys(pages)) == sorted(str(1000 + n) for n in range(60))  # each exactly once
    lower_bounds = {s.split("'")[1] for s in shop.searches}
    assert len(lower_bounds) >= 3, shop.searches


def _at(cursor: str | None) -> datetime:
    return parse_time(json.loads(cursor or "{}")["updated_at"])


@pytest.mark.parametrize(("lookback", "third_poll"), [(300, {"1001": ["late"], "1002": ["prompt"]}), (0, {})])
def test_an_update_that_reaches_the_search_index_late_is_read_by_the_lookback(
    shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock, lookback: int, third_poll: dict[str, list[str]]
) -> None:
    """Shopify's search can trail its data: an update stamped before the checkpoint may show up only later."""
    settings = {"recheck_unfulfilled_days": 0, "lookback_seconds": lookback}
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z"))
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z"))
    _, cursor = read(make_adapter(**settings))

    shop.store.update(order_gid(1), tags=["late"])  # stamped 12:00:00 ...
    shop.store.lag_index(order_gid(1), 200)  # ... but searchable only from 12:03:20
    clock.advance(30)
    shop.store.update(order_gid(2), tags=["prompt"])  # 12:00:30, searchable at once
    clock.advance(100)
    second, cursor = read(make_adapter(**settings), cursor)
    assert _segments(second) == {"1002": ["prompt"]}
    assert _at(cursor) == parse_time("2026-11-20T12:00:30Z"), "the checkpoint moved past 1001's update"

    clock.advance(300)
    third, final = read(make_adapter(**settings), cursor)
    assert _segments(third) == third_poll  # with a lookback: 1001 found, 1002 read again (unchanged, not re-sent)
    assert _at(final) == _at(cursor), "the checkpoint never moves back"


def _segments(pages: list[Page]) -> dict[str, list[str]]:
    return {r.key: list(r.order.segments) for r in records(pages) if r.order}


def test_the_lookback_is_read_once_per_poll_even_when_the_search_restarts(
    shop: FakeShopify, make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.setattr(adapter_module, "RESTART_AFTER", 20)
    for n in range(60):
        shop.add_order(order(n, updated=f"2026-11-20T10:{n // 3:02d}:00Z"))  # 10:00-10:19, groups of three ties
    _, cursor = read(make_adapter(recheck_unfulfilled_days=0))
    clock.advance(300)
    for n in range(30, 60):  # half of them move to 10:20-10:29
        shop.store.update(order_gid(n), when=f"2026-11-20T10:{20 + (n - 30) // 3:02d}:00Z", tags=["moved"])
    shop.searches.clear()

    pages, final = read(make_adapter(recheck_unfulfilled_days=0, lookback_seconds=3600), cursor)
    assert sorted(keys(pages)) == sorted(str(1000 + n) for n in range(60)), "each order of the overlap and after it once"
    assert all(_at(p.cursor) >= _at(cursor) for p in pages if p.cursor), "no checkpoint below the one we started from"
    assert _at(final) == parse_time("2026-11-20T10:29:00Z")
    lower_bounds = list(dict.fromkeys(s.split("'")[1] for s in shop.searches))  # one entry per search, not per page
    assert lower_bounds[0] == "2026-11-20T09:19:00Z" and len(set(lower_bounds)) >= 2, shop.searches
    assert all(b >= "2026-11-20T10:19:00Z" for b in lower_bounds[1:]), "a restart searches from the checkpoint, no lookback"


def test_cancelled_unshipped_orders_are_not_read_in_full_every_poll(
    shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock
) -> None:
    """They match ``fulfillment_status:unshipped`` but never enter the watch: the recheck must not find them."""
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z", cancelledAt="2026-11-20T10:00:00Z"))
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z"))  # unshipped, watched
    shop.add_order(order(3, updated="2026-11-20T11:00:00Z"))  # the checkpoint: its lookback leaves 1001 and 1002 out
    _, cursor = read(make_adapter())
    full_reads = []
    for _ in range(3):
        clock.advance(300)
        shop.requests.clear()
        _, cursor = read(make_adapter(), cursor)
        full_reads.append([r["variables"]["ids"] for r in shop.graphql_requests("OrdersById")])
        assert shop.graphql_requests("AwaitingOrders") and shop.graphql_requests("ProbeOrders") == []  # 1002: found by search
    assert full_reads == [[], [], []]
    assert set(json.loads(cursor or "{}")["watch"]) == {"5000002", "5000003"}


class TestContract(AdapterContract):
    """The adapter kit's guarantees (resume from every page, nothing new after the final cursor, ...)."""

    @pytest.fixture(autouse=True)
    def _shop(self, shop: FakeShopify, clock: FakeClock) -> Any:
        self.fake, self.clock, self.made = shop, clock, []
        self.secrets = [shop.token]
        for n in range(30):
            data = order(n, updated=f"2026-11-20T10:{n // 4:02d}:00Z")
            if n % 3 == 0:
                data["fulfillments"] = [fulfillment(data, 100 + n, [f"TRK{n}"])]
            shop.add_order(data)
        yield
        for adapter in self.made:
            adapter.close()

    def _adapter(self, context: AdapterContext, token: str) -> ShopifyAdapter:
        config = ShopifyConfig(type="shopify", shop_domain=self.fake.domain, api_base_url=self.fake.url, access_token=token)
        context = dataclasses.replace(context, clock=self.clock.now)
        adapter = ShopifyAdapter("shop", config, context, sleep=self.clock.sleep, monotonic=self.clock.monotonic)
        self.made.append(adapter)
        return adapter

    def make_adapter(self, context: AdapterContext) -> ShopifyAdapter:
        return self._adapter(context, self.fake.token)

    def make_bad_adapter(self, context: AdapterContext) -> ShopifyAdapter:
        return self._adapter(context, "shpat_wrong")
