"""``BatchCap``: what a 413 teaches about Karla's batch limit (pure logic; the sandbox test is in
tests/integration/test_karla_refusals.py)."""

from __future__ import annotations

from connector.items import BatchCap, Item, batches


def item(key: str, size: int = 10) -> Item:
    return Item("shop", key, [], b"x" * size)


def test_nothing_is_capped_until_karla_accepts_after_a_refusal() -> None:
    cap = BatchCap()
    cap.accepted(50, 5000)
    assert cap.limits(50, 1_000_000) == (50, 1_000_000)  # no refusal: nothing learnt
    cap.too_large(1, 900_000)  # one order too large: its letter, not a batch limit
    assert cap.refused is None
    cap.too_large(50, 5000)
    assert cap.limits(50, 1_000_000) == (50, 1_000_000) and cap.news() is None  # not known yet
    cap.accepted(12, 1200)
    cap.accepted(13, 1300)
    assert cap.limits(50, 1_000_000) == (13, 1300) and cap.limits(10, 1_000_000) == (10, 1300)
    told = cap.news(bytes_floor=10_000)
    assert told is not None and "bulk_max_orders = 13" in told and "bulk_max_bytes" not in told.split("Set")[1]
    assert cap.news() is None  # once per process


def test_a_refusal_within_the_cap_learns_the_lower_limit_again() -> None:
    cap = BatchCap()
    cap.too_large(50, 5000)
    cap.accepted(20, 2000)
    cap.too_large(30, 3000)  # a batch in flight from before: bigger than the cap, the cap stands
    assert cap.limits(50, 10**6) == (20, 2000)
    cap.too_large(20, 2000)  # Karla lowered its limit
    assert cap.limits(50, 10**6) == (50, 10**6)
    cap.accepted(10, 1000)
    assert cap.limits(50, 10**6) == (10, 1000)


def test_a_refused_batch_is_cut_within_the_cap_else_halved() -> None:
    cap = BatchCap()
    items = [item(str(n)) for n in range(10)]
    assert [len(b) for b in cap.cut(items)] == [5, 5]
    cap.too_large(10, 111)
    cap.accepted(3, 34)
    assert [len(b) for b in cap.cut(items)] == [3, 3, 3, 1]
    assert [len(b) for _, b in batches(iter(items), 50, 10**6, cap=cap)] == [3, 3, 3, 1]
