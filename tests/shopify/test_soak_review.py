"""Found by a 17-minute soak of the daemon with all three sources: what repeats poll after poll."""

from __future__ import annotations

from pathlib import Path

from connector.engine import sync_source
from state import DeadLetters, open_state
from tests.shopify.factories import order
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock
from tests.shopify.test_engine import _runtime


def test_an_order_that_cannot_go_stays_one_letter_however_often_it_is_edited(
    shop: FakeShopify, clock: FakeClock, tmp_path: Path
) -> None:
    # Its letter carried updatedAt: every tag or note added in Shopify made another letter and warning.
    db = open_state(tmp_path / "s.db")
    rt = _runtime(shop, clock)
    unsendable = order(1)  # to Hong Kong: no postal code, which Karla requires
    unsendable["shippingAddress"].update(zip=None, city="Hong Kong", country="Hong Kong", countryCodeV2="HK")
    unsendable = shop.add_order(unsendable, updated="2026-11-20T10:00:00Z")
    assert sync_source(db, rt, clock=clock.now).new_letters == 1
    for minute in (1, 2, 3):
        shop.store.update(unsendable["id"], tags=[f"note{minute}"])
        clock.advance(600)
        assert sync_source(db, rt, clock=clock.now).new_letters == 0
    with db.read() as conn:
        assert [row.order_key for row in DeadLetters(conn).list()] == ["1001"]


def test_the_next_poll_does_not_start_blind_into_a_low_bucket(clock: FakeClock, tmp_path: Path) -> None:
    # The daemon builds an adapter per poll; each started without the bucket's state and sent its first
    # query into what the previous poll had left (THROTTLED).
    with FakeShopify(clock, maximum=1000, restore_rate=50) as shop:
        for n in range(300):
            shop.add_order(order(n, updated=f"2026-11-20T10:{n // 60:02d}:{n % 60:02d}Z"))
        db = open_state(tmp_path / "s.db")
        sync_source(db, _runtime(shop, clock), clock=clock.now)
        throttled = shop.throttled
        clock.advance(1)
        shop.add_order(order(999))
        sync_source(db, _runtime(shop, clock), clock=clock.now)
        assert shop.throttled == throttled
