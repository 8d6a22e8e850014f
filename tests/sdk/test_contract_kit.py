"""The contract kit itself: it must pass correct adapters and fail the ones that would lose orders.

Each adapter below is a few lines over twelve in-memory orders. Classes named ``Test*`` run the whole kit
(and must pass); the ``_*Kit`` classes are run by hand and must fail with a message that says why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from adapters.base import AdapterContext, FileMark, Page, Record, SourceConfig, StreamSpec
from adapters.testing import AdapterContract
from connector.karla import OrderPlacement

ORDERS = [{"id": n, "updated": f"2026-11-20T10:0{(n - 1) // 3}:00Z"} for n in range(1, 13)]  # three per timestamp


def record(order: dict[str, Any], cursor: str | None = None) -> Record:
    placed = OrderPlacement.model_validate({"order_number": str(order["id"]), "address": {"zip_code": "10119"}})
    return Record(key=str(order["id"]), order=placed, cursor=cursor, location=f"memory:{order['id']}")


class KitConfig(SourceConfig):
    type: Literal["kit"] = "kit"


class _Base:
    type = "kit"
    Config = KitConfig
    page_size = 5

    def __init__(self, name: str, config: KitConfig, context: AdapterContext) -> None:
        self.context = context
        self.closed = False

    def check(self) -> list[str]:
        return []

    def streams(self) -> list[StreamSpec]:
        return [StreamSpec("orders", is_sorted=True)]

    def close(self) -> None:
        self.closed = True


class NumericCursor(_Base):
    """Correct: the cursor is the last id as text, so "10" sorts before "9" as a string. Opaque to the engine."""

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        rows = [o for o in ORDERS if o["id"] > (int(cursor) if cursor else 0)]
        for start in range(0, len(rows), self.page_size):
            chunk = rows[start : start + self.page_size]
            yield Page(records=[record(o, str(o["id"])) for o in chunk], cursor=str(chunk[-1]["id"]))


class TupleCursor(_Base):
    """Correct: exclusive on the full (updated, id) tuple; the cursor only on every other page."""

    page_size = 2

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        after = tuple(json.loads(cursor)) if cursor else None
        rows = [o for o in ORDERS if after is None or (o["updated"], o["id"]) > after]
        for number, start in enumerate(range(0, len(rows), self.page_size)):
            chunk = rows[start : start + self.page_size]
            last = chunk[-1]
            mark = json.dumps([last["updated"], last["id"]]) if number % 2 or start + self.page_size >= len(rows) else None
            yield Page(records=[record(o) for o in chunk], cursor=mark)


class TimestampOnly(_Base):
    """Wrong: skips what is <= the last timestamp, so the rest of a timestamp cut by a page is lost."""

    page_size = 2

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        rows = [o for o in ORDERS if cursor is None or o["updated"] > cursor]
        for start in range(0, len(rows), self.page_size):
            chunk = rows[start : start + self.page_size]
            yield Page(records=[record(o) for o in chunk], cursor=chunk[-1]["updated"])


FILES = {"a.jsonl": ORDERS[:6], "b.jsonl": ORDERS[6:]}


class _Files(_Base):
    early = False
    seen_in_full_sync = False  # wrong when true: a full sync must read files already seen

    def streams(self) -> list[StreamSpec]:
        return [StreamSpec("orders")]

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        for name, rows in FILES.items():
            mark = FileMark(name, len(rows), 0.0, name)
            if self.context.is_seen(mark) and (self.seen_in_full_sync or not self.context.full_sync):
                continue
            if self.early:  # wrong: the file is reported done on a page before its last records
                yield Page(records=[record(o) for o in rows[:3]], done_files=[mark])
                yield Page(records=[record(o) for o in rows[3:]])
            else:  # right: done with the page that holds its last records; no cursor needed
                yield Page(records=[record(o) for o in rows[:3]])
                yield Page(records=[record(o) for o in rows[3:]], done_files=[mark])


class FilesDoneLast(_Files):
    pass


class FilesDoneEarly(_Files):
    early = True


class FilesSkippedInFullSync(_Files):
    seen_in_full_sync = True


class OnePage(_Base):
    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        if cursor is None:
            yield Page(records=[record(o) for o in ORDERS], cursor="all")


# -- adapters the kit must pass ------------------------------------------------------------------------
class TestNumericCursorPassesTheKit(AdapterContract):
    def make_adapter(self, context: AdapterContext) -> NumericCursor:
        return NumericCursor("t", KitConfig(), context)


class TestTupleCursorPassesTheKit(AdapterContract):
    def make_adapter(self, context: AdapterContext) -> TupleCursor:
        return TupleCursor("t", KitConfig(), context)


class TestFilesDoneOnTheirLastPagePassTheKit(AdapterContract):
    def make_adapter(self, context: AdapterContext) -> FilesDoneLast:
        return FilesDoneLast("t", KitConfig(), context)


# -- adapters the kit must fail ------------------------------------------------------------------------
def kit_for(adapter_cls: type[_Base]) -> AdapterContract:
    class Kit(AdapterContract):
        def make_adapter(self, context: AdapterContext) -> _Base:
            return adapter_cls("t", KitConfig(), context)

    return Kit()


def test_a_file_reported_done_before_its_last_records_fails_the_kit() -> None:
    kit = kit_for(FilesDoneEarly)
    with pytest.raises(AssertionError) as failure:
        kit.test_resuming_after_a_crash_at_every_page_loses_nothing()
    message = str(failure.value)
    assert "crash after page 0 of stream orders loses 3 record(s) (orders:4, orders:5, orders:6)" in message
    assert "files done ['a.jsonl']" in message


def test_the_engine_would_indeed_lose_those_orders() -> None:
    """The failure above is real: commit page 0 (a.jsonl marked seen), die, resume as the engine does."""
    seen: set[str] = set()
    context = AdapterContext(source="t", is_seen=lambda mark: mark.path in seen)
    first = next(FilesDoneEarly("t", KitConfig(), context).read("orders", None))
    seen.update(mark.path for mark in first.done_files)
    resumed = list(FilesDoneEarly("t", KitConfig(), context).read("orders", None))
    keys = {r.key for page in [first, *resumed] for r in page.records}
    assert {"4", "5", "6"}.isdisjoint(keys)


def test_skipping_what_is_not_after_the_timestamp_alone_fails_the_kit() -> None:
    with pytest.raises(AssertionError, match=r"crash after page 0 of stream orders loses 1 record\(s\) \(orders:3\)"):
        kit_for(TimestampOnly).test_resuming_after_a_crash_at_every_page_loses_nothing()


def test_test_data_of_one_page_fails_with_a_reason() -> None:
    with pytest.raises(AssertionError, match=r"yields 1 page\(s\) in all .*resuming after a crash is not tested"):
        kit_for(OnePage).test_resuming_after_a_crash_at_every_page_loses_nothing()


def test_numeric_text_cursors_are_not_compared() -> None:
    assert "10" < "9"  # the ordering the old kit applied, which failed NumericCursor
    kit_for(NumericCursor).test_streams_record_progress()


def test_the_kit_closes_adapters_like_the_engine() -> None:
    made: list[NumericCursor] = []

    class Kit(AdapterContract):
        def make_adapter(self, context: AdapterContext) -> NumericCursor:
            made.append(NumericCursor("t", KitConfig(), context))
            return made[-1]

    Kit().test_resuming_after_a_crash_at_every_page_loses_nothing()
    assert made and all(adapter.closed for adapter in made)
