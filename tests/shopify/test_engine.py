"""The adapter under the real engine: only what changed reaches the outbox, whatever path read it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from connector.engine import sync_source
from state import Cursors, Runs, StateDB, open_state
from tests.shopify.factories import fulfillment, order
from tests.shopify.conftest import engine_runtime
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock


_runtime = engine_runtime


def test_engine_enqueues_a_late_tracking_and_nothing_else(shop: FakeShopify, clock: FakeClock, db: StateDB) -> None:
    for n in range(12):
        data = order(n, updated=f"2026-11-20T10:{n:02d}:00Z")
        if n % 2:
            data["fulfillments"] = [fulfillment(data, 100 + n, [f"TRK{n}"])]
        shop.add_order(data)
    rt = _runtime(shop, clock)
    first = sync_source(db, rt, clock=clock.now)
    assert (first.read, first.enqueued) == (12, 12 + 6)

    clock.advance(600)
    unshipped = shop.store.order(order(4)["id"])
    shop.store.add_fulfillment(unshipped["id"], fulfillment(unshipped, 404, ["LATE-1", "LATE-2"]), touch=False)
    second = sync_source(db, rt, clock=clock.now)
    # Read: the late order, and the six orders of the 5-minute lookback before the cursor (10:06-10:11).
    # Queued: only the two new parcels; the late order itself, the overlap's 6 orders and 3 parcels are unchanged.
    assert (second.read, second.enqueued, second.unchanged) == (1 + 6, 2, 1 + 6 + 3)

    third = sync_source(db, _runtime(shop, clock, use_bulk_for_full_sync=True), clock=clock.now, full=True)
    assert (third.read, third.enqueued) == (12, 0), "a bulk full sync maps exactly like the incremental reads"
    with db.read() as conn:
        assert Cursors(conn).get("shop", "orders") is not None


def test_a_shutdown_during_the_nightly_bulk_wait_stops_within_one_poll(shop: FakeShopify, clock: FakeClock, db: StateDB) -> None:
    """The engine checks for a stop between pages; the empty page per status poll gives it that chance.

    The daemon's shutdown also sets ``abort`` (lent to the adapter as ``context.stop``), which makes every
    ordinary request refuse to start: the cancel must go out anyway, or the operation keeps running.
    """
    for n in range(5):
        shop.add_order(order(n, updated=f"2026-11-20T10:{n:02d}:00Z"))
    shop.bulk.polls_to_finish = 10_000  # Shopify would keep us waiting for bulk_timeout_seconds (4 h)
    abort = threading.Event()
    answers = iter([False, False, True])  # SIGTERM arrives during the third status poll

    def stop() -> bool:  # the daemon's signal handler: stopping.set(), then connector.abort()
        stopping = next(answers)
        if stopping:
            abort.set()
        return stopping

    counts = sync_source(db, _runtime(shop, clock, bulk_poll_seconds=10), clock=clock.now, full=True, stop=stop, abort=abort)
    assert counts.read == 0 and sum(clock.slept) == 20
    assert [op.status for op in shop.bulk.ops.values()] == ["CANCELED"], "tomorrow's operation is not blocked"
    with db.read() as conn:
        assert (Runs(conn).last("shop") or {})["status"] == "stopped"


def test_an_order_with_many_discounts_is_not_resent_between_polls_and_the_full_sync(
    shop: FakeShopify, clock: FakeClock, db: StateDB
) -> None:
    """More discount applications than the nested page: once complete on both paths, nothing flips back and forth."""
    data = order(1, updated="2026-11-20T10:00:00Z", items=1)
    data["discountApplications"] = [
        {"__typename": "DiscountCodeApplication", "code": f"CODE{i}",
         "value": {"__typename": "MoneyV2", "amount": "1.0", "currencyCode": "EUR"}} for i in range(8)]
    shop.add_order(data)
    rt = _runtime(shop, clock, recheck_unfulfilled_days=0)
    assert sync_source(db, rt, clock=clock.now).enqueued == 1
    nightly = sync_source(db, _runtime(shop, clock, use_bulk_for_full_sync=True), clock=clock.now, full=True)
    assert (nightly.read, nightly.enqueued) == (1, 0), "the full sync maps the order exactly like the poll did"
    shop.store.update(data["id"], tags=["vip"])  # touched, unchanged for Karla: the poll reads it again
    clock.advance(600)
    again = sync_source(db, rt, clock=clock.now)
    assert (again.read, again.enqueued) == (1, 0)


def test_an_idle_poll_says_nothing_at_info(shop, clock, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A poll re-reads its lookback window, so the newest order is read on every poll: an idle poll is one that
    queued nothing, not one that read nothing; and the API version is said once per process, not per poll."""
    import logging

    from adapters.shopify import client

    client._ANNOUNCED.clear()
    db = open_state(tmp_path / "state.db")
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z"))
    rt = _runtime(shop, clock)
    sync_source(db, rt, clock=clock.now)
    clock.advance(3600)
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            sync_source(db, rt, clock=clock.now)
            clock.advance(300)
    db.close()
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and not r.name.startswith(("httpx", "httpcore"))]
    assert said == []
    assert any("read 1 records" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
