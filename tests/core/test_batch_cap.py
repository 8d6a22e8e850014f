"""``BatchCap``: what a 413 teaches about Karla's batch limit (pure logic; the sandbox tests are in
tests/integration/test_karla_refusals.py)."""

from __future__ import annotations

from connector.items import BatchCap, Item, batches


def item(key: str, size: int = 10) -> Item:
    return Item("shop", key, [], b"x" * size)


def test_nothing_is_capped_until_karla_accepts_after_a_refusal() -> None:
    cap = BatchCap()
    cap.accepted(50)
    assert cap.limit(50) == 50  # no refusal: nothing learnt
    cap.too_large(50)
    assert cap.limit(50) == 50 and cap.news() is None  # not known yet
    cap.accepted(12)
    cap.accepted(13)
    assert cap.limit(50) == 13 and cap.limit(10) == 10
    told = cap.news()
    assert told is not None and "bulk_max_orders = 13" in told and "bulk_max_bytes" not in told
    assert cap.news() is None  # once per process


def test_a_refusal_within_the_cap_learns_the_lower_limit_again() -> None:
    cap = BatchCap()
    cap.too_large(50)
    cap.accepted(20)
    cap.too_large(30)  # a batch in flight from before: bigger than the cap, the cap stands
    assert cap.limit(50) == 20
    cap.too_large(20)  # Karla lowered its limit
    assert cap.limit(50) == 50
    cap.accepted(10)
    assert cap.limit(50) == 10


def test_the_cap_stays_below_the_fewest_orders_refused() -> None:
    cap = BatchCap()
    cap.too_large(30)
    cap.accepted(40)  # sent before the refusal: says nothing of the limit refused at 30
    assert cap.limit(50) == 50
    cap.accepted(29)
    assert cap.limit(50) == 29


def test_one_order_too_large_on_its_own_forgets_what_its_splits_taught() -> None:
    cap = BatchCap()
    cap.too_large(2)  # the order and a sibling: refused for the order's size, not for their number
    cap.accepted(1)  # the sibling alone
    assert cap.limit(50) == 1
    cap.too_large(1)  # the order alone: its letter; Karla's batch limit is unknown again
    assert cap.limit(50) == 50 and cap.refused is None and cap.news() is None
    cap.accepted(3)  # no refusal on record: nothing learnt
    assert cap.limit(50) == 50


def test_a_refused_batch_is_cut_within_the_cap_else_halved() -> None:
    cap = BatchCap()
    items = [item(str(n)) for n in range(10)]
    assert [len(b) for b in cap.cut(items)] == [5, 5]
    cap.too_large(10)
    cap.accepted(3)
    assert [len(b) for b in cap.cut(items)] == [3, 3, 3, 1]
    assert [len(b) for _, b in batches(iter(items), 50, 10**6, cap=cap)] == [3, 3, 3, 1]
    assert [len(b) for _, b in batches(iter(items), 50, 23, cap=cap)] == [2, 2, 2, 2, 2]  # bytes: the config's alone
