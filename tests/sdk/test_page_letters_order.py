"""A page's own rejections weighed against its own records and skipped orders (review sdk8, findings 2-4).

A page of an event log or an append-only export can hold an order's bad row and its correction, a clean
read and a later bad one, or a bad row and the order's cancellation: the later read decides, a letter read
again keeps its id, and a clean parcel clears a letter whose raw nests its tracking number.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from adapters.base import Page, Record, Rejected, SourceConfig, StreamSpec
from connector.engine import SourceRuntime, sync_source
from connector.karla import OrderPlacement, Tracking
from state import DeadLetters
from state.db import open_state


class LogConfig(SourceConfig):
    type: Literal["log"] = "log"


class EventLog:
    """An append-only export read by line number (cursor: the last line): ``ROWS`` are (number, zip) events,
    one with no zip code a rejection. ``LOCATION`` False: locations without a line (an API's ``erp://``)."""

    type = "log"
    Config = LogConfig
    ROWS: list[tuple[str, str]] = []
    LINES = True
    page_size = 10

    def __init__(self, name: str, config: LogConfig, context: Any) -> None:
        self.context = context

    def check(self) -> list[str]:
        return []

    def streams(self) -> list[StreamSpec]:
        return [StreamSpec("orders")]

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        page = Page()
        for n, (number, zip_code) in enumerate(self.ROWS, start=1):
            if cursor and n <= int(cursor):
                continue
            loc = f"events.jsonl:{n}" if self.LINES else f"erp://orders/{number}"
            if zip_code:
                order = OrderPlacement.model_validate({"order_number": number, "address": {"zip_code": zip_code}})
                page.records.append(Record(key=number, location=loc, order=order))
            else:
                page.rejected.append(Rejected(location=loc, reason=f"order {number}: zip_code is empty", key=number))
            page.cursor = str(n)
            if len(page.records) + len(page.rejected) >= self.page_size:
                yield page
                page = Page()
        if page.records or page.rejected:
            yield page


def _letters(db: Any) -> list[tuple[int, str | None, str | None]]:
    with db.read() as conn:
        return [(r.id, r.order_key, r.location) for r in DeadLetters(conn).list()]


def _clock() -> Any:
    ticks = iter(datetime(2026, 12, 1, tzinfo=timezone.utc) + timedelta(seconds=i) for i in range(100))
    return lambda: next(ticks)


def _log(rows: list[tuple[str, str]], lines: bool = True) -> type[EventLog]:
    return type("Log", (EventLog,), {"ROWS": rows, "LINES": lines})


def test_a_rejection_and_a_clean_record_of_one_order_on_one_page_the_letter_stands(tmp_path: Path) -> None:
    """Which was read later is not known (a CSV parcel's rows are siblings; an export may be sorted by time,
    not by line): the letter stands, and a later page's clean read clears it."""
    db, clock = open_state(tmp_path / "s.db"), _clock()
    counts = sync_source(db, SourceRuntime("erp", _log([("2002", ""), ("2002", "10119")]), LogConfig(), "shop"), clock=clock)
    assert _letters(db) == [(1, "2002", "events.jsonl:1")] and (counts.rejected, counts.new_letters) == (1, 1)
    paged = type("Paged", (_log([("2002", ""), ("2002", "10119")]),), {"page_size": 1})
    sync_source(db, SourceRuntime("erp", paged, LogConfig(), "shop"), clock=clock, full=True)
    assert _letters(db) == []


def test_a_clock_stepped_back_between_pages_still_clears_a_corrected_letter(tmp_path: Path) -> None:
    """Page 1's letter, then NTP steps the clock back 30 s: page 2's clean read of the order must clear it
    (it counted only letters dated before page 2's time); a clock too coarse to move did the same."""
    db = open_state(tmp_path / "s.db")
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    ticks = iter([t0, t0, t0, t0 - timedelta(seconds=30)] + [t0 - timedelta(seconds=29)] * 50)
    paged = type("Paged", (_log([("2002", ""), ("2002", "10119")]),), {"page_size": 1})
    sync_source(db, SourceRuntime("erp", paged, LogConfig(), "shop"), clock=lambda: next(ticks))
    assert _letters(db) == []
    still = iter([t0] * 50)  # a clock that does not move from page to page
    sync_source(db, SourceRuntime("erp", paged, LogConfig(), "shop"), clock=lambda: next(still), full=True)
    assert _letters(db) == []


def test_a_letter_a_clean_read_precedes_stands_with_its_id_through_full_syncs(tmp_path: Path) -> None:
    db, clock = open_state(tmp_path / "s.db"), _clock()
    rt = SourceRuntime("erp", _log([("2001", "10119"), ("2001", "")]), LogConfig(), "shop")
    assert sync_source(db, rt, clock=clock).new_letters == 1
    before = _letters(db)
    assert before == [(1, "2001", "events.jsonl:2")]
    for _ in range(2):  # each night: the same letter, not a new one (no "new dead letter" warning, exit 0)
        again = sync_source(db, rt, clock=clock, full=True)
        assert _letters(db) == before and (again.new_letters, again.rejected) == (0, 1)


def test_without_line_numbers_the_rejection_stands_and_keeps_its_id(tmp_path: Path) -> None:
    """The page cannot say which came later: the letter stands (a later page's clean read clears it)."""
    db, clock = open_state(tmp_path / "s.db"), _clock()
    rt = SourceRuntime("erp", _log([("2003", ""), ("2003", "10119")], lines=False), LogConfig(), "shop")
    sync_source(db, rt, clock=clock)
    assert _letters(db) == [(1, "2003", "erp://orders/2003")]
    assert sync_source(db, rt, clock=clock, full=True).new_letters == 0 and _letters(db) == [(1, "2003", "erp://orders/2003")]
    sync_source(db, SourceRuntime("erp", _log([("2003", "10119")], lines=False), LogConfig(), "shop"), clock=clock, full=True)
    assert _letters(db) == []


class CreatedThenCancelled(EventLog):
    """Event 1: order 4001 created without a zip code; event 2, on the same page: it is cancelled (skipped)."""

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        if not cursor:
            yield Page(rejected=[Rejected(location="events.jsonl:1", reason="order 4001: zip_code is empty", key="4001")],
                       skipped=["4001"], cursor="2")


def test_an_order_skipped_on_the_page_of_its_bad_row_leaves_no_letter(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    sync_source(db, SourceRuntime("erp", CreatedThenCancelled, LogConfig(), "shop"), clock=_clock())
    assert _letters(db) == []


class PaddedERP(EventLog):
    """A fixed-width ERP export pads its order numbers: "1001  "; Record.key and Rejected.key strip them."""

    CANCELLED = False

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        if not self.CANCELLED:
            yield Page(rejected=[Rejected(location="erp://orders/1001", reason="zip_code is empty", key="1001  ")], cursor="1")
        else:
            yield Page(skipped=["1001  "], cursor="2")


def test_a_padded_skipped_key_clears_the_letter_of_its_padded_rejection(tmp_path: Path) -> None:
    db, clock = open_state(tmp_path / "s.db"), _clock()
    sync_source(db, SourceRuntime("erp", PaddedERP, LogConfig(), "shop"), clock=clock)
    assert _letters(db) == [(1, "1001", "erp://orders/1001")]
    sync_source(db, SourceRuntime("erp", type("Cancelled", (PaddedERP,), {"CANCELLED": True}), LogConfig(), "shop"), clock=clock)
    assert _letters(db) == []


class Shipments(EventLog):
    """A shipment feed whose raw is the ERP's shipment JSON, the tracking code nested as APIs return it."""

    FIXED = False

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        loc = "erp://shipments/77"
        raw = {"id": 77, "order": {"number": "3001"}, "tracking": {"code": "T9", "carrier": "Paket Blitz"}}
        if not self.FIXED:
            yield Page(rejected=[Rejected(location=loc, reason="carrier 'Paket Blitz' unknown", key="3001", raw=raw)], cursor="1")
        else:
            parcel = Tracking(tracking_number="T9", tracking_company="Paket Blitz")
            yield Page(records=[Record(key="3001", location=loc, trackings=[parcel])], cursor="2")


def test_a_clean_parcel_clears_its_letter_when_raw_nests_the_tracking_number(tmp_path: Path) -> None:
    db, clock = open_state(tmp_path / "s.db"), _clock()
    sync_source(db, SourceRuntime("erp", Shipments, LogConfig(), "shop"), clock=clock)
    assert len(_letters(db)) == 1
    sync_source(db, SourceRuntime("erp", type("Fixed", (Shipments,), {"FIXED": True}), LogConfig(), "shop"), clock=clock)
    assert _letters(db) == []


class OtherParcel(EventLog):
    """A bad parcel row, then on the same page a clean parcel of the same order with another number."""

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        bad = Rejected(location="events.jsonl:1", reason="carrier unknown", key="5001", raw={"parcel": {"code": "T1"}})
        good = Record(key="5001", location="events.jsonl:2", trackings=[Tracking(tracking_number="T2", tracking_company="DHL")])
        yield Page(records=[good], rejected=[bad], cursor="2")


def test_a_later_clean_parcel_clears_only_a_bad_row_of_its_own_number(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    sync_source(db, SourceRuntime("erp", OtherParcel, LogConfig(), "shop"), clock=_clock())
    assert _letters(db) == [(1, "5001", "events.jsonl:1")]
