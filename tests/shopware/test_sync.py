"""Incremental sync against a shop that is written to while it is read."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import httpx
import pytest

from adapters.base import Record
from adapters.shopware.criteria import Window, window_criteria
from tests.shopware import factory as f
from tests.shopware.conftest import CLIENT_ID, SECRET, Clock, MakeAdapter, records, searches
from tests.shopware.fake_server import FakeShopware


def shipped_order(number: int, status: str = "in_progress") -> dict:
    items = [f.line_item("Shirt", f"SKU-{number}", 1, 20.0)]
    return f.order(str(number), items=items, status=status, deliveries=[f.delivery([(items[0], 1)], status="shipped", ship_to=f.address())])


class Writer:
    """Random but seeded writes between page requests: inserts, order edits, and tracking codes on deliveries.

    An edit becomes visible up to 200 s after its timestamp (Shopware stamps rows before the transaction
    commits); the lag (60 s) and the overlap (300 s) must absorb that.
    """

    def __init__(self, shop: FakeShopware, clock: Clock, rng: random.Random, numbers: int) -> None:
        self.shop, self.clock, self.rng, self.next_number = shop, clock, rng, numbers

    def __call__(self, shop: FakeShopware) -> None:
        self.clock.advance(seconds=self.rng.uniform(0.5, 20))
        for _ in range(self.rng.randint(0, 3)):
            roll, victim = self.rng.random(), self.rng.choice(list(shop.orders.values()))
            stamped = self.clock.now - timedelta(seconds=self.rng.uniform(0, 200))
            if roll < 0.3:
                shop.insert(shipped_order(self.next_number))
                self.next_number += 1
            elif roll < 0.7:
                shop.update(victim["id"], at=stamped, amountTotal=round(self.rng.uniform(1, 999), 2))
            else:
                shop.add_tracking_code(victim["deliveries"][0]["id"], f"T{self.rng.randrange(10**9)}", at=stamped)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nothing_skipped_or_duplicated_under_concurrent_writes(seed: int, shop: FakeShopware, clock: Clock,
                                                               make_adapter: MakeAdapter) -> None:
    rng = random.Random(seed)
    for n in range(120):  # history: created over four days, a third edited since, some already shipped
        order = shop.insert(shipped_order(n), at=clock.now - timedelta(hours=rng.uniform(0, 96)))
        if n % 3 == 0:
            shop.update(order["id"], at=clock.now - timedelta(minutes=rng.uniform(0, 600)), amountTotal=float(n))
        if n % 4 == 0:
            shop.add_tracking_code(order["deliveries"][0]["id"], f"OLD{n}", at=clock.now - timedelta(minutes=rng.uniform(0, 900)))
    shop.before_search = Writer(shop, clock, rng, 1000)
    latest: dict[str, Record] = {}
    cursor = None
    for poll in range(10):
        pages = list(make_adapter(page_size=7, initial_days=5, window_hours=12).read("orders", cursor))
        if poll % 3 == 1 and len(pages) > 2:  # a crash: only some pages were committed
            pages = pages[: rng.randrange(1, len(pages))]
        per_window: dict[str, list[str]] = {}
        for record in (r for p in pages for r in p.records):
            latest[record.key] = record
            per_window.setdefault((record.cursor or "").split("/")[0], []).append(record.key)
        for keys in per_window.values():
            assert len(keys) == len(set(keys)), "an order was read twice within one window scan"
        cursor = pages[-1].cursor if pages else cursor
        clock.advance(minutes=rng.uniform(1, 6))
    shop.before_search = None
    clock.advance(minutes=2)  # past the lag: a quiet poll collects what was written during the last one
    for record in (r for p in make_adapter(page_size=7).read("orders", cursor) for r in p.records):
        latest[record.key] = record

    final = {o["orderNumber"]: o for o in shop.orders.values()}
    assert set(final) == set(latest), sorted(set(final) ^ set(latest))[:5]
    for number, order in final.items():
        record = latest[number]
        assert record.order is not None and record.order.total_order_price == order["amountTotal"], number
        assert sorted(t.tracking_number for t in record.trackings) == sorted(order["deliveries"][0]["trackingCodes"]), number


def test_offset_paging_would_lose_orders_in_the_same_situation(shop: FakeShopware, clock: Clock) -> None:
    """The fake is adversarial enough: page/offset over a moving set skips rows the keyset reads."""
    for n in range(60):  # created long ago, edited within the window: in it by updatedAt only
        order = shop.insert(shipped_order(n), at=clock.now - timedelta(days=3))
        shop.update(order["id"], at=clock.now - timedelta(minutes=30), amountTotal=1.0)
    window = Window(clock.now - timedelta(hours=2), clock.now - timedelta(minutes=1))
    rng, touched = random.Random(7), set()

    def edit(fake: FakeShopware) -> None:
        for victim in rng.sample(list(fake.orders.values()), 3):
            fake.update(victim["id"], amountTotal=2.0)
            touched.add(victim["orderNumber"])

    shop.before_search = edit
    token = httpx.post(f"{shop.url}/api/oauth/token", json={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                                           "client_secret": SECRET}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    seen: set[str] = set()
    for page in range(1, 20):
        criteria = window_criteria(window, 0, 5, ["in_progress"]) | {"page": page}
        rows = httpx.post(f"{shop.url}/api/search/order", json=criteria, headers=headers).json()["data"]
        seen |= {r["orderNumber"] for r in rows}
        if len(rows) < 5:
            break
    never_touched = {o["orderNumber"] for o in shop.orders.values()} - touched
    assert never_touched - seen, "offset paging should have skipped an order that never changed"


def test_a_late_tracking_code_on_the_delivery_only_reaches_karla(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    order = shop.insert(shipped_order(1, status="completed"), at=clock.now - timedelta(hours=2))
    first = list(make_adapter().read("orders", None))
    assert records(first)["1"].trackings == []
    clock.advance(minutes=10)
    shop.add_tracking_code(order["deliveries"][0]["id"], "00340434161094042557")
    assert order["updatedAt"] is None  # the order row did not change
    clock.advance(minutes=2)
    later = list(make_adapter().read("orders", first[-1].cursor))
    assert [t.tracking_number for t in records(later)["1"].trackings] == ["00340434161094042557"]
    fields = json.dumps(searches(shop)[-1]["body"]["filter"][0])
    assert "deliveries.updatedAt" in fields and "deliveries.createdAt" in fields


def test_state_filters(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    def order(number: str, status: str, delivery_status: str, codes: list[str]) -> dict:
        items = [f.line_item("Shirt", f"SKU-{number}", 1, 20.0)]
        return f.order(number, items=items, status=status, deliveries=[f.delivery([(items[0], 1)], codes=codes, status=delivery_status)])

    hour_ago = clock.now - timedelta(hours=1)
    shop.insert(order("open-unshipped", "open", "open", []), at=hour_ago)
    shop.insert(order("cancelled", "cancelled", "cancelled", ["X1"]), at=hour_ago)
    shop.insert(order("open-shipped", "open", "shipped", ["S1"]), at=hour_ago)  # a delivery change: sent anyway
    shop.insert(order("returned", "completed", "returned", ["R1"]), at=hour_ago)
    shop.insert(order("partial", "in_progress", "shipped_partially", ["P1", "P2"]), at=hour_ago)
    stale = shop.insert(order("stale-open", "open", "shipped", ["OLD"]), at=clock.now - timedelta(days=40))
    shop.update(stale["id"], at=hour_ago, customerComment="payment reminder")  # not a delivery change
    got = records(list(make_adapter().read("orders", None)))
    assert set(got) == {"open-shipped", "returned", "partial"}
    assert [t.tracking_number for t in got["open-shipped"].trackings] == ["S1"] and got["returned"].trackings == []
    assert sorted(t.tracking_number for t in got["partial"].trackings) == ["P1", "P2"]
    state_filter = searches(shop)[-1]["body"]["filter"][1]["queries"][0]
    assert state_filter == {"type": "equalsAny", "field": "stateMachineState.technicalName", "value": ["in_progress", "completed"]}

    custom = records(list(make_adapter(order_states=["completed"], delivery_states=["returned"]).read("orders", None)))
    assert set(custom) == {"returned"} and [t.tracking_number for t in custom["returned"].trackings] == ["R1"]


def test_historical_cutoff_drops_deliveries_changed_before_it(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    old = shop.insert(shipped_order(1), at=clock.now - timedelta(days=10))
    shop.add_tracking_code(old["deliveries"][0]["id"], "OLD", at=clock.now - timedelta(days=9))
    shop.update(old["id"], at=clock.now - timedelta(hours=1), amountTotal=3.0)
    new = shop.insert(shipped_order(2), at=clock.now - timedelta(hours=2))
    shop.add_tracking_code(new["deliveries"][0]["id"], "NEW", at=clock.now - timedelta(hours=1))
    cutoff = (clock.now - timedelta(days=2)).date()
    got = records(list(make_adapter(historical_cutoff=cutoff.isoformat()).read("orders", None)))
    assert got["1"].trackings == [] and got["1"].order is not None  # the order itself still goes
    assert [t.tracking_number for t in got["2"].trackings] == ["NEW"]


def test_a_crash_resumes_the_same_closed_window_at_the_same_key(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    for n in range(10):
        shop.insert(shipped_order(n), at=clock.now - timedelta(hours=1))
    pages = list(make_adapter(page_size=3, window_hours=1000).read("orders", None))
    assert [len(p.records) for p in pages] == [3, 3, 3, 1]
    middle = json.loads(pages[1].cursor or "")
    assert middle["scan"]["after"] == 6 and middle["window_end"] is None
    before = len(searches(shop))
    resumed = list(make_adapter(page_size=3).read("orders", pages[1].cursor))
    assert [r.key for p in resumed for r in p.records] == ["6", "7", "8", "9"]
    first_again = searches(shop)[before]["body"]["filter"]
    assert first_again == window_criteria(Window(datetime.fromisoformat(middle["scan"]["start"]),
                                                 datetime.fromisoformat(middle["scan"]["end"])), 6, 3, ["in_progress", "completed"])["filter"]
    assert json.loads(resumed[-1].cursor or "") == {"window_end": middle["scan"]["end"]}


def test_windows_split_a_backlog_and_follow_each_other(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    pages = list(make_adapter(initial_days=3, window_hours=24, lag_seconds=60).read("orders", None))
    bounds = [(q["parameters"]["gte"], q["parameters"]["lte"]) for q in (s["body"]["filter"][0]["queries"][0] for s in searches(shop))]
    assert bounds == [("2026-11-20 12:00:00.000", "2026-11-21 12:00:00.000"), ("2026-11-21 12:00:00.000", "2026-11-22 12:00:00.000"),
                      ("2026-11-22 12:00:00.000", "2026-11-23 11:59:00.000")]
    assert [json.loads(p.cursor or "") for p in pages][-1] == {"window_end": "2026-11-23T11:59:00.000+00:00"}

    list(make_adapter().read("orders", pages[-1].cursor))  # polled again at once: nothing new to ask for
    assert len(searches(shop)) == 3
    clock.advance(minutes=5)
    list(make_adapter().read("orders", pages[-1].cursor))
    overlap = searches(shop)[-1]["body"]["filter"][0]["queries"][0]["parameters"]
    assert overlap == {"gte": "2026-11-23 11:54:00.000", "lte": "2026-11-23 12:04:00.000"}  # 300 s overlap


@pytest.mark.parametrize(("skew", "expected_end"), [(-600, "2026-11-23 11:49:00.000"), (600, "2026-11-23 11:59:00.000")])
def test_the_window_ends_by_the_earlier_of_both_clocks(skew: int, expected_end: str, clock: Clock, make_adapter: MakeAdapter,
                                                       shop: FakeShopware) -> None:
    shop.skew = timedelta(seconds=skew)
    list(make_adapter(initial_days=1, window_hours=48).read("orders", None))
    assert searches(shop)[0]["body"]["filter"][0]["queries"][0]["parameters"]["lte"] == expected_end


def test_full_sync_ignores_the_cursor_and_starts_at_full_sync_since(shop: FakeShopware, clock: Clock,
                                                                   make_adapter: MakeAdapter) -> None:
    shop.insert(shipped_order(1), at=clock.now - timedelta(days=40))
    adapter = make_adapter(full_sync=True, full_sync_since="2026-10-01", window_hours=24 * 60)
    done = json.dumps({"window_end": "2026-11-23T11:00:00.000+00:00"})
    assert set(records(list(adapter.read("orders", done)))) == {"1"}
    assert searches(shop)[0]["body"]["filter"][0]["queries"][0]["parameters"]["gte"] == "2026-10-01 00:00:00.000"


def test_unmapped_sales_channels_use_the_source_shop(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    shop.insert(f.order("1", channel="sc-at"), at=clock.now - timedelta(hours=1))
    shop.insert(f.order("2", channel="sc-de"), at=clock.now - timedelta(hours=1))
    got = records(list(make_adapter(sales_channels={"sc-at": "shop-austria"}).read("orders", None)))
    assert (got["1"].shop_slug, got["2"].shop_slug) == ("shop-austria", None)


@pytest.mark.parametrize("cursor", ["not json", '{"window_end": 17}', '{"scan": {"start": "x"}}'])
def test_an_unreadable_cursor_starts_from_the_initial_window(cursor: str, shop: FakeShopware, clock: Clock,
                                                            make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture) -> None:
    shop.insert(shipped_order(1), at=clock.now - timedelta(days=2))
    assert set(records(list(make_adapter().read("orders", cursor)))) == {"1"}
    assert "unreadable cursor" in caplog.text


def _open_order(shop: FakeShopware, clock: Clock, age: timedelta) -> list[str]:
    """Order 7, left ``open`` (outside ``order_states``), with two deliveries not shipped yet: their ids."""
    items = [f.line_item("Shirt", "SKU-1", 1, 20.0), f.line_item("Mug", "SKU-2", 1, 10.0)]
    deliveries = [f.delivery([(item, 1)], codes=[], ship_to=f.address()) for item in items]
    return [d["id"] for d in shop.insert(f.order("7", items=items, status="open", deliveries=deliveries), at=clock.now - age)["deliveries"]]


def _ship(shop: FakeShopware, delivery: str, code: str, at: datetime) -> None:
    shop.add_tracking_code(delivery, code, at=at)
    shop.set_delivery_state(delivery, f.state("shipped"), at=at)


def test_an_order_outside_order_states_lists_all_its_parcels_once_one_ships(shop: FakeShopware, clock: Clock,
                                                                            make_adapter: MakeAdapter) -> None:
    """The stream lists every live parcel of an order (``complete_trackings``): a parcel shipped in an
    earlier poll, left out of the record, would be taken as withdrawn (dropped if waiting, else reported)."""
    one, two = _open_order(shop, clock, timedelta(hours=3))
    _ship(shop, one, "ONE", clock.now - timedelta(hours=2))
    first = list(make_adapter().read("orders", None))
    assert [t.tracking_number for t in records(first)["7"].trackings] == ["ONE"]
    clock.advance(minutes=30)
    _ship(shop, two, "TWO", clock.now - timedelta(minutes=5))
    clock.advance(minutes=5)
    later = records(list(make_adapter().read("orders", first[-1].cursor)))
    assert sorted(t.tracking_number for t in later["7"].trackings) == ["ONE", "TWO"]


def test_a_backlog_read_in_windows_keeps_every_parcel_of_an_open_order(shop: FakeShopware, clock: Clock, tmp_path) -> None:
    """The first parcel shipped in an earlier window than the second: the later window's record must not
    drop it from the outbox (found by a review: it never reached Karla, not even by a full sync)."""
    from adapters.shopware import ShopwareAdapter, ShopwareConfig
    from connector.engine import SourceRuntime, sync_source
    from state import open_state

    one, two = _open_order(shop, clock, timedelta(days=60))
    _ship(shop, one, "ONE", clock.now - timedelta(days=45))
    _ship(shop, two, "TWO", clock.now - timedelta(days=10))
    config = ShopwareConfig.model_validate({"type": "shopware", "base_url": shop.url, "client_id": CLIENT_ID,
                                            "client_secret": SECRET, "full_sync_since": (clock.now - timedelta(days=100)).date().isoformat()})
    db = open_state(tmp_path / "state.db")
    counts = sync_source(db, SourceRuntime("sw", ShopwareAdapter, config, "shop"), clock=clock)
    with db.read() as conn:
        parts = sorted(p for (p,) in conn.exec_driver_sql("SELECT part FROM outbox"))
    assert parts == ["order", "tracking:ONE", "tracking:TWO"] and counts.withdrawn == 0
