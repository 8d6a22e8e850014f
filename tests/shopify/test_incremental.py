"""Incremental reads: no order lost or split at equal timestamps, changes while paging, lag, restarts."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

import adapters.shopify.adapter as adapter_module
from adapters.base import AdapterContext
from adapters.shopify import ShopifyAdapter, ShopifyConfig
from adapters.testing import AdapterContract
from tests.shopify.conftest import MakeAdapter, keys, read, records
from tests.shopify.factories import fulfillment, order, order_gid
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock

TIE = "2026-11-20T10:00:00Z"


def _orders_at(shop: FakeShopify, numbers: range, updated: str) -> None:
    for n in numbers:
        shop.add_order(order(n, updated=updated))


def test_no_order_lost_or_split_at_equal_timestamps(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    shop.add_order(order(900, updated="2026-11-20T09:59:50Z"))
    _orders_at(shop, range(300), TIE)
    shop.add_order(order(901, updated="2026-11-20T10:00:10Z"))
    settings = {"page_size": 50, "recheck_unfulfilled_days": 0}
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
    assert keys(again) == []


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
    again, _ = read(make_adapter(recheck_unfulfilled_days=0), cursor)
    changed = {r.key: r.order.segments for r in records(again) if r.order}
    assert changed == {"1000": ["updated-after-read"], "1030": ["updated-while-paging"]}


def test_orders_still_being_written_wait_for_the_lag(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    shop.add_order(order(1, updated="2026-11-20T11:00:00Z"))
    shop.add_order(order(2), updated=clock.now())  # updated just now
    first, cursor = read(make_adapter(recheck_unfulfilled_days=0))
    assert keys(first) == ["1001"]
    clock.advance(61)
    second, _ = read(make_adapter(recheck_unfulfilled_days=0), cursor)
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
