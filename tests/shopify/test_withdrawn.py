"""A parcel withdrawn in Shopify (a fulfilment cancelled, a tracking number corrected) after it was read.

Found by review: the old parcel stayed a live shipment in Karla with no word to anyone, and one still
waiting in the outbox was sent. Shopify's records list every live parcel of their order
(``StreamSpec.complete_trackings``), so the engine can tell.
"""

from __future__ import annotations

import logging

import pytest

from connector.engine import sync_source
from state import Outbox, StateDB
from tests.shopify.factories import fulfillment, order
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock
from tests.shopify.conftest import engine_runtime as _runtime


def _parts(db: StateDB, table: str) -> list[str]:
    with db.read() as conn:
        return [part for (part,) in conn.exec_driver_sql(f"SELECT part FROM {table} ORDER BY part")]


def _delivered(db: StateDB) -> None:
    """What a drain does once Karla acknowledged everything waiting."""
    with db.transaction() as conn:
        box = Outbox(conn)
        box.mark_delivered(box.scan(None, 100), now=1.0)


def _shipped(shop: FakeShopify, *numbers: str) -> dict:
    data = order(1, updated="2026-11-20T10:00:00Z")
    data["fulfillments"] = [fulfillment(data, 71, list(numbers))]
    shop.add_order(data)
    return data


def _changed(shop: FakeShopify, clock: FakeClock, data: dict, **fields: object) -> None:
    clock.advance(600)
    shop.store.order(data["id"])["fulfillments"][0].update(fields)
    shop.store.update(data["id"])
    clock.advance(120)


def test_a_fulfilment_cancelled_after_it_reached_karla_is_reported_once(
    shop: FakeShopify, clock: FakeClock, db: StateDB, caplog: pytest.LogCaptureFixture
) -> None:
    data = _shipped(shop, "VOIDED-LABEL")
    rt = _runtime(shop, clock)
    sync_source(db, rt, clock=clock.now)
    _delivered(db)
    _changed(shop, clock, data, status="CANCELLED")
    with caplog.at_level(logging.WARNING):
        counts = sync_source(db, rt, clock=clock.now)
    assert counts.withdrawn == 1 and _parts(db, "delivered") == ["order"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "order 1001: parcel VOIDED-LABEL is in Karla" in warning and "no longer lists it" in warning
    caplog.clear()
    clock.advance(120)
    assert sync_source(db, rt, clock=clock.now, full=True).withdrawn == 0  # said once, not every night


def test_a_corrected_number_replaces_a_waiting_one(shop: FakeShopify, clock: FakeClock, db: StateDB) -> None:
    data = _shipped(shop, "TYPO123")
    rt = _runtime(shop, clock)
    sync_source(db, rt, clock=clock.now)
    assert _parts(db, "outbox") == ["order", "tracking:TYPO123"]  # not sent yet (Karla was down, say)
    _changed(shop, clock, data, trackingInfo=[{"number": "FIXED123", "company": "DHL Express", "url": None}])
    counts = sync_source(db, rt, clock=clock.now)
    assert counts.withdrawn == 0 and _parts(db, "outbox") == ["order", "tracking:FIXED123"]
