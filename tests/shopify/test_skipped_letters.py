"""An order the adapter now leaves out on purpose loses the dead letter the source gave it (``Page.skipped``).

0.1.0 made local pickups dead letters ("Shopify withheld the shipping address"); 0.2.0 skips them, and an order
cancelled after its letter is skipped too. Such an order never reads cleanly, so its letter stayed for ever and
`dlq retry` kept telling the merchant to fix it at the source (found by an upgrade review).
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.engine import SourceRuntime, sync_source
from state import DeadLetters, StateDB
from tests.shopify.factories import order, order_gid, pickup
from tests.shopify.conftest import engine_runtime
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock

WITHOUT_FULFILLMENT_ORDERS = ["read_orders", "read_all_orders", "read_fulfillments"]  # 0.1.0's recommended scopes


def _runtime(shop: FakeShopify, clock: FakeClock, **settings: Any) -> SourceRuntime:
    return engine_runtime(shop, clock, **{"recheck_unfulfilled_days": 0, **settings})


def _letters(db: StateDB) -> list[tuple[str, str | None, str]]:
    with db.read() as conn:
        return [(row.stage, row.order_key, row.reason) for row in DeadLetters(conn).list()]


def _karla_letter(db: StateDB, key: str, now: float) -> None:
    """What Karla refused of an earlier version of the order: it had that data, so a skip must not clear it."""
    item = {"id": key, "id_type": "order_number", "order": {"order_number": key}, "trackings": []}
    with db.transaction() as conn:
        DeadLetters(conn).add([{"created_at": now, "stage": "karla", "source": "shop", "stream": "orders", "slug": "test-shop",
                                "order_key": key, "id_type": "order_number", "reason": "422 zip_code_invalid", "payload": item}])


def test_a_cancelled_order_loses_its_withheld_address_letter_and_nothing_else(shop: FakeShopify, clock: FakeClock,
                                                                           db: StateDB) -> None:
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z", shippingAddress=None))  # to ship, address withheld
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z", shippingAddress=None))  # stays so
    rt = _runtime(shop, clock)
    first = sync_source(db, rt, clock=clock.now)
    assert first.new_letters == 2 and all("withheld the shipping address" in reason for _, _, reason in _letters(db))
    _karla_letter(db, "1001", clock.now().timestamp())

    shop.store.update(order_gid(1), cancelledAt="2026-11-20T12:00:00Z")  # skip_cancelled (default true)
    shop.add_order(order(3, test=True))  # skipped, never a letter: changes nothing
    clock.advance(600)  # past lag_seconds
    second = sync_source(db, rt, clock=clock.now)
    assert second.rejected == 1 and second.read == 0
    assert sorted((stage, key) for stage, key, _ in _letters(db)) == [("karla", "1001"), ("source", "1002")]


@pytest.mark.parametrize("full", [False, True], ids=["edited", "full-sync"])
def test_a_pickup_dead_lettered_without_the_scope_loses_its_letter_once_recognised(
    shop: FakeShopify, clock: FakeClock, db: StateDB, full: bool
) -> None:
    """The upgrade path: 0.1.0 (or 0.2.0 without read_merchant_managed_fulfillment_orders) lettered the pickup;
    with the scope granted, the next read that sees it (an edit, the nightly bulk full sync) clears it."""
    shop.scopes = WITHOUT_FULFILLMENT_ORDERS
    shop.add_order(pickup(1, updated="2026-11-20T10:00:00Z"))
    rt = _runtime(shop, clock)
    sync_source(db, rt, clock=clock.now)
    ((stage, key, reason),) = _letters(db)
    assert (stage, key) == ("source", "1001") and "local pickup" in reason

    shop.scopes = [*WITHOUT_FULFILLMENT_ORDERS, "read_merchant_managed_fulfillment_orders"]
    if not full:
        shop.store.update(order_gid(1), tags=["abgeholt"])
    clock.advance(600)
    again = sync_source(db, rt, clock=clock.now, full=full)
    assert (again.read, again.rejected) == (0, 0)
    assert _letters(db) == []


def test_without_letters_a_skipped_order_changes_nothing(shop: FakeShopify, clock: FakeClock, db: StateDB) -> None:
    """A source without letters of its own skips orders as before: no letter to clear, none made."""
    shop.add_order(pickup(1, updated="2026-11-20T10:00:00Z"))
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z", cancelledAt="2026-11-20T10:00:01Z"))
    _karla_letter(db, "1002", clock.now().timestamp() - 60)
    counts = sync_source(db, _runtime(shop, clock), clock=clock.now)
    assert (counts.read, counts.rejected) == (0, 0)
    assert [(stage, key) for stage, key, _ in _letters(db)] == [("karla", "1002")]
