"""An order read and left out as it stands (a state outside ``order_states`` with nothing shipped, an excluded
channel) loses the dead letter the source gave it: it never reads cleanly again, so the letter stayed for ever.
One left out of a later window only (its shipped delivery changed in an earlier one) keeps it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connector.engine import SourceRuntime, sync_source
from state import DeadLetters, StateDB
from tests.shopware import factory as f
from tests.shopware.conftest import Clock, engine_runtime
from tests.shopware.fake_server import FakeShopware

OUTLET = "0190c3d2e4f5a6b7c8d9e0f1a2b3c4d5"


def _runtime(shop: FakeShopware, clock: Clock, **settings: Any) -> SourceRuntime:
    return engine_runtime(shop, clock, "shop", initial_days=2, **settings)


def _letter_keys(db: StateDB) -> list[str | None]:
    with db.read() as conn:
        return sorted(row.order_key for row in DeadLetters(conn).list())


def _no_zip(number: str, **kw: Any) -> dict[str, Any]:
    return f.order(number, billing=f.address(zipcode=None), **kw)


def _shipped_no_zip(number: str, status: str) -> dict[str, Any]:
    """One delivery shipped, one still open."""
    items = [f.line_item("Shirt", f"SKU-{number}", 1, 20.0), f.line_item("Cap", f"SKU-{number}-2", 1, 9.0)]
    parcel = f.delivery([(items[0], 1)], codes=[f"TRK{number}"], status="shipped", ship_to=f.address(zipcode=None))
    return f.order(number, items=items, status=status, deliveries=[parcel, f.delivery([(items[1], 1)])])


def test_an_order_cancelled_or_in_an_excluded_channel_loses_its_letter(shop: FakeShopware, clock: Clock, db: StateDB) -> None:
    cancelled = shop.insert(_no_zip("5"), at=clock.now - timedelta(hours=1))
    outlet = shop.insert(_no_zip("7", channel=OUTLET), at=clock.now - timedelta(hours=1))
    shipped_open = shop.insert(_shipped_no_zip("6", "open"), at=clock.now - timedelta(hours=1))  # sent for its shipment
    shop.insert(_no_zip("8"), at=clock.now - timedelta(hours=1))  # stays bad
    first = sync_source(db, _runtime(shop, clock), clock=clock)
    assert first.new_letters == 4 and _letter_keys(db) == ["5", "6", "7", "8"]

    done = f.state("cancelled")  # Shopware's search leaves such an order out unless a delivery of it changed:
    shop.update(cancelled["id"], stateMachineState=done, stateId=done["id"])
    shop.set_delivery_state(cancelled["deliveries"][0]["id"], f.state("cancelled"))  # cancelled with its delivery
    shop.update(outlet["id"], amountTotal=1.0)
    # open, read for its other delivery's change, its shipment not in this window: left out of this window only
    shop.add_tracking_code(shipped_open["deliveries"][1]["id"], "LATER")
    shop.insert(f.order("9", status="open"))  # read (a new delivery), left out, never a letter: changes nothing
    clock.advance(minutes=5)
    second = sync_source(db, _runtime(shop, clock, exclude_sales_channels=[OUTLET]), clock=clock)
    assert (second.read, second.rejected) == (0, 0)
    assert _letter_keys(db) == ["6", "8"]
