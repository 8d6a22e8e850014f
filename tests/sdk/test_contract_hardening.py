"""What a third-party adapter author can get wrong that the contract or the kit let through.

Each case passed before: an ``int`` key that defeats change detection, a dead letter whose raw row holds
a ``datetime`` and stops the source for good, an adapter that ignores its cursor, a ``check()`` that
returns a str.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Page, Record, Rejected
from connector.engine import SourceRuntime, sync_source
from state import DeadLetters
from state.db import open_state
from tests.sdk.test_contract_kit import ORDERS, KitConfig, NumericCursor, _Base, kit_for, record

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


# -- 1. Record.key: a str, or an int made a str -----------------------------------------------------------
def test_an_int_key_is_made_a_str() -> None:
    assert Record(key=4711, trackings=()).key == "4711"  # type: ignore[arg-type]
    assert Rejected(location="erp://orders/4711", reason="bad", key=4711).key == "4711"  # type: ignore[arg-type]
    assert Rejected(location="x", reason="bad").key is None


@pytest.mark.parametrize("key", [True, 4711.0, None, b"4711", ("erp", 4711)])
def test_a_key_of_another_type_is_refused_with_the_rule(key: Any) -> None:
    with pytest.raises(TypeError, match=r"Record\.key must be a str \(or int\)"):
        Record(key=key)
    if key is not None:  # a rejection's key is only for messages and clearing: any value is made text
        assert Rejected(location="x", reason="bad", key=key).key == str(key)


class IntKeys(NumericCursor):
    """What a REST API returns: numeric ids, given to Record as they are."""

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        for page in super().read(stream, cursor):
            page.records = [Record(key=int(r.key), order=r.order, location=r.location) for r in page.records]
            yield page


def test_an_int_key_reads_as_unchanged_the_second_time(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    rt = SourceRuntime("erp", IntKeys, KitConfig(), "shop")
    sync_source(db, rt, clock=lambda: NOW, full=True)
    again = sync_source(db, rt, clock=lambda: NOW, full=True)
    assert (again.read, again.unchanged, again.enqueued) == (len(ORDERS), len(ORDERS), 0)


# -- 2. Rejected.raw: JSON-like; what a driver returns is stored as its str() ---------------------------
DRIVER_ROW = {"number": "2", "updated_at": datetime(2026, 12, 1, 9, 0), "placed": date(2026, 11, 30),
              "total": Decimal("9.50"), "id": uuid.UUID(int=7)}


class DriverRows(_Base):
    """Every fourth order is a dead letter whose raw row is what a database driver returns."""

    raw: Any = DRIVER_ROW

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        rows = [o for o in ORDERS if o["id"] > (int(cursor) if cursor else 0)]
        for start in range(0, len(rows), self.page_size):
            chunk = rows[start : start + self.page_size]
            yield Page(records=[record(o) for o in chunk if o["id"] % 4], cursor=str(chunk[-1]["id"]),
                       rejected=[Rejected(location=f"memory:{o['id']}", reason="qty -1", key=str(o["id"]), raw=self.raw)
                                 for o in chunk if not o["id"] % 4])


class ListRaw(DriverRows):
    raw = [("number", "2")]


class TupleKeyRaw(DriverRows):
    raw = {("a", 1): "x"}


def test_a_raw_row_of_driver_values_is_stored_as_text(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    counts = sync_source(db, SourceRuntime("erp", DriverRows, KitConfig(), "shop"), clock=lambda: NOW)
    assert (counts.read, counts.rejected) == (9, 3)
    with db.read() as conn:
        letters = DeadLetters(conn).list()
    assert [letter.location for letter in letters] == ["memory:4", "memory:8", "memory:12"]
    assert letters[0].payload == {"number": "2", "updated_at": "2026-12-01 09:00:00", "placed": "2026-11-30",
                                  "total": "9.50", "id": str(uuid.UUID(int=7))}


def test_a_letter_read_again_is_refreshed_not_added(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    rt = SourceRuntime("erp", DriverRows, KitConfig(), "shop")
    sync_source(db, rt, clock=lambda: NOW)
    again = sync_source(db, rt, clock=lambda: NOW, full=True)
    assert (again.rejected, again.new_letters) == (3, 0)


def test_the_kit_passes_driver_values_in_raw() -> None:
    kit_for(DriverRows).test_pages_hold_valid_karla_records()


@pytest.mark.parametrize(("adapter", "message"), [(ListRaw, r"Rejected\.raw must be a Mapping, not list"),
                                                  (TupleKeyRaw, r"Rejected\.raw must be JSON-like")])
def test_the_kit_fails_raw_that_is_not_json_like(adapter: type[_Base], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        kit_for(adapter).test_pages_hold_valid_karla_records()


# -- 3. a run from the committed cursors reads less than the first ---------------------------------------
class IgnoresCursor(NumericCursor):
    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        yield from super().read(stream, None)


class InclusiveTimestamp(_Base):
    """Correct: ``updated >= cursor``, re-emitting the orders of the cursor's instant (three per instant)."""

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        rows = [o for o in ORDERS if cursor is None or o["updated"] >= cursor]
        for start in range(0, len(rows), self.page_size):
            chunk = rows[start : start + self.page_size]
            yield Page(records=[record(o) for o in chunk], cursor=chunk[-1]["updated"])


def test_an_adapter_that_ignores_its_cursor_fails_the_kit() -> None:
    with pytest.raises(AssertionError, match=r"stream orders: a run from the committed cursors and files read all 12 records "
                                             r"again.*inclusive timestamp cursor re-emits only the records of the cursor's instant"):
        kit_for(IgnoresCursor).test_rereading_from_the_cursor_yields_nothing_new()


def test_an_inclusive_timestamp_cursor_passes_the_kit() -> None:
    kit = kit_for(InclusiveTimestamp)
    kit.test_rereading_from_the_cursor_yields_nothing_new()
    kit.test_resuming_after_a_crash_at_every_page_loses_nothing()


# -- 4. keys end up str; check() returns a list ------------------------------------------------------------
class KeyForcedToInt(NumericCursor):
    """Gets round the coercion (``object.__setattr__`` on the frozen Record): the engine would see an int."""

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        for page in super().read(stream, cursor):
            for r in page.records:
                object.__setattr__(r, "key", int(r.key))
            yield page


class CheckReturnsStr(NumericCursor):
    def check(self) -> list[str]:
        return "all good"  # type: ignore[return-value]


def test_the_kit_passes_int_keys_made_str() -> None:
    kit_for(IntKeys).test_pages_hold_valid_karla_records()


def test_a_key_that_is_not_a_str_fails_the_kit() -> None:
    with pytest.raises(AssertionError, match=r"Record\.key must be a str"):
        kit_for(KeyForcedToInt).test_pages_hold_valid_karla_records()


def test_check_returning_a_str_fails_the_kit() -> None:
    with pytest.raises(AssertionError, match=r"check\(\) must return a list of str, not 'all good'"):
        kit_for(CheckReturnsStr).test_check_succeeds_on_good_config()
