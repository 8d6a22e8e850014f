"""CSV letters through the engine's page handling (review chg8b): a bad row of a parcel whose sibling row
comes after it keeps its letter (a page's clean records once settled it, the parcel going without that row's
product and the file moved to the error folder with no letter to retry), and two letters of one row (a cell
listing two parcels) keep their own reasons through re-reads.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from adapters.csv import CsvAdapter, CsvConfig
from connector.engine import SourceRuntime, sync_source
from state import DeadLetters
from state.db import open_state
from tests.csvsource.test_csv_adapter import write


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _letters(db) -> list[tuple[int, str | None, str | None, str]]:  # type: ignore[no-untyped-def]
    with db.read() as conn:
        return [(r.id, r.location, r.order_key, r.reason) for r in DeadLetters(conn).list()]


def test_a_bad_row_of_a_parcel_keeps_its_letter_when_a_sibling_row_follows(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "fulfillments_1.csv", "order_number,tracking_number,carrier,sku\n7,P1,DHL\n7,P1,DHL,A-2\n")
    db = open_state(tmp_path / "s.db")
    counts = sync_source(db, SourceRuntime("files", CsvAdapter, CsvConfig(url=f"file://{folder}", settle_seconds=0), "shop"),
                         clock=_now)
    letters = _letters(db)
    assert [(where, key) for _, where, key, _ in letters] == [("fulfillments_1.csv:2", "7")], letters
    assert (counts.rejected, counts.new_letters) == (1, 1)


def test_two_letters_of_one_row_keep_their_own_reasons_through_a_full_sync(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "fulfillments_1.csv", 'order_number,tracking_number,shipped_at\n7,"P1 / P2",31.02.2026\n')
    db = open_state(tmp_path / "s.db")
    rt = SourceRuntime("files", CsvAdapter, CsvConfig(url=f"file://{folder}", settle_seconds=0), "shop")
    sync_source(db, rt, clock=_now)
    first = _letters(db)
    assert len(first) == 2 and "P1" in first[0][3] and "P2" in first[1][3], first
    again = sync_source(db, rt, clock=_now, full=True)
    assert _letters(db) == first and again.new_letters == 0
