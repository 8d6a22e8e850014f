"""The cursor's format and the tie-group rule that decides where a checkpoint may land."""

from __future__ import annotations

import json

from adapters.shopify.cursor import CursorState, GroupTracker, Position, gid_number, parse_time


def _at(second: int, number: int) -> Position:
    return Position(parse_time(f"2026-11-20T10:00:{second:02d}Z"), number)


def test_cursor_round_trip_and_older_watch_lists() -> None:
    state = CursorState(_at(5, 123), ((7, 99), (10, None)))
    text = state.dump()
    assert json.loads(text) == {"updated_at": "2026-11-20T10:00:05Z", "id": "gid://shopify/Order/123",
                                "watch": {"7": 99, "10": None}}
    assert CursorState.parse(text) == state
    legacy = CursorState.parse('{"updated_at": "2026-11-20T10:00:05+00:00", "id": null, "watch": [10, 7]}')
    assert legacy == CursorState(_at(5, -1), ((7, None), (10, None)))


def test_ids_compare_as_numbers() -> None:
    assert gid_number("gid://shopify/Order/999") < gid_number("gid://shopify/Order/1000")
    assert _at(0, 999) < _at(0, 1000) < _at(1, 1)


def test_checkpoint_moves_only_past_complete_timestamp_groups() -> None:
    tracker = GroupTracker(_at(0, -1))
    for number in (50, 10, 30):  # one group, ties in no particular order
        tracker.see(_at(1, number))
    assert tracker.checkpoint == _at(0, -1), "the group at :01 may continue on the next page"
    tracker.see(_at(2, 5))
    assert tracker.checkpoint == _at(1, 50), "complete: its largest id, not the last one seen"
    assert tracker.finish() == _at(2, 5)


def test_out_of_order_results_freeze_the_checkpoint_until_the_window_ends() -> None:
    tracker = GroupTracker(_at(0, -1))
    for second, number in ((1, 1), (3, 3), (2, 2), (4, 4)):
        tracker.see(_at(second, number))
    assert tracker.checkpoint == _at(1, 1)
    assert tracker.finish() == _at(4, 4)
