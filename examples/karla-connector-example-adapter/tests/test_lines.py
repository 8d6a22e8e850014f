"""Lines the adapter cannot place become dead letters naming file:line, once; the rest is read; times are times."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.base import AdapterContext, Page
from karla_example_adapter import JsonlAdapter, JsonlConfig


def good(number: str, updated: str = "2026-11-20T10:00:00Z") -> str:
    return json.dumps({"number": number, "updated": updated, "zip": "10119"})


def adapter(path: Path, page_size: int = 100) -> JsonlAdapter:
    return JsonlAdapter("toy", JsonlConfig(path=path, page_size=page_size), AdapterContext(source="toy"))


def run(path: Path, cursor: str | None = None, page_size: int = 100) -> tuple[list[Page], str | None]:
    """One run as the engine commits it: the pages, and the last cursor a page carried."""
    pages = list(adapter(path, page_size).read("orders", cursor))
    for page in pages:
        cursor = page.cursor if page.cursor is not None else cursor
    return pages, cursor


def keys(pages: list[Page]) -> list[str]:
    return [r.key for p in pages for r in p.records]


def letters(pages: list[Page]) -> dict[str, str]:
    return {r.location: r.reason for p in pages for r in p.rejected}


def write(tmp_path: Path, *lines: str | bytes) -> Path:
    path = tmp_path / "orders.jsonl"
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n")
    return path


def test_broken_lines_are_dead_letters_and_the_rest_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        good("A-1"),
        '{"number": "A-2", "updated": "2026-11-20T10:00:00Z", "zip": "1',  # cut off
        '{"number": "A-3", "updated": null, "zip": "10119"}',
        good("A-4"),
        '["not", "an", "order"]',
        '{"updated": "2026-11-20T10:00:00Z"}',
        '{"number": "A-7", "updated": "yesterday"}',
        b'{"number": "A-8", "updated": "2026-11-20T10:00:00Z", "name": "M\xfcller"}',  # Latin-1, not UTF-8
        "",
        good("A-10"),
    )
    pages, _ = run(path)
    assert keys(pages) == ["A-1", "A-10", "A-4"]
    found = letters(pages)
    assert found.keys() == {f"orders.jsonl:{n}" for n in (2, 3, 5, 6, 7, 8)}
    assert found["orders.jsonl:2"].startswith("not valid JSON")
    assert found["orders.jsonl:3"] == "order A-3: 'updated' is None; it must be a date-time"
    assert found["orders.jsonl:5"] == "not a JSON object but list"
    assert found["orders.jsonl:6"] == "'number' is missing; it must be the order number"
    assert found["orders.jsonl:7"] == "order A-7: 'updated' 'yesterday' is not a date-time"
    assert found["orders.jsonl:8"].startswith("not UTF-8 text")
    assert {r.key for p in pages for r in p.rejected} == {None, "A-3", "A-7"}


def test_a_broken_line_is_reported_once_then_again_only_when_new(tmp_path: Path) -> None:
    path = write(tmp_path, good("A-1"), '{"number": "A-2", "updated": null}')
    first, cursor = run(path)
    assert list(letters(first)) == ["orders.jsonl:2"]
    again, cursor = run(path, cursor)
    assert again == []
    path.write_text(path.read_text() + "{oops\n" + good("A-4", "2026-11-21T10:00:00Z") + "\n")
    later, cursor = run(path, cursor)
    assert list(letters(later)) == ["orders.jsonl:3"] and keys(later) == ["A-4"]
    assert run(path, cursor)[0] == []


def test_a_fixed_line_is_read_and_forgotten(tmp_path: Path) -> None:
    path = write(tmp_path, good("A-1"), '{"number": "A-2", "updated": null}')
    _, cursor = run(path)
    path.write_text(good("A-1") + "\n" + good("A-2", "2026-11-21T09:00:00Z") + "\n")
    pages, cursor = run(path, cursor)
    assert keys(pages) == ["A-2"] and letters(pages) == {}
    assert json.loads(cursor or "{}")["reported"] == []


def test_a_crash_after_the_dead_letter_page_neither_repeats_it_nor_loses_orders(tmp_path: Path) -> None:
    path = write(tmp_path, "{bad", good("A-1"), "{worse", good("A-2"), good("A-3"))
    pages, _ = run(path, page_size=1)
    assert [list(letters([p])) for p in pages[:2]] == [["orders.jsonl:1"], ["orders.jsonl:3"]]
    for crash in range(len(pages) - 1):
        committed = [p.cursor for p in pages[: crash + 1] if p.cursor is not None][-1]
        resumed, _ = run(path, committed, page_size=1)
        assert set(letters(pages[: crash + 1])).isdisjoint(letters(resumed))
        assert sorted(keys(pages[: crash + 1]) + keys(resumed)) == ["A-1", "A-2", "A-3"]


def test_order_is_by_time_not_by_how_the_time_is_written(tmp_path: Path) -> None:
    """12:00+02:00 is 10:00Z. Compared as text it would sort after 11:00Z, and once the cursor stood
    there an order updated at 11:00Z would never be read."""
    path = write(tmp_path, good("A-1", "2026-11-20T12:00:00+02:00"))
    _, cursor = run(path)
    path.write_text(path.read_text() + good("A-2", "2026-11-20T11:00:00Z") + "\n")
    assert keys(run(path, cursor)[0]) == ["A-2"]


def test_ties_on_updated_are_resumed_by_number(tmp_path: Path) -> None:
    path = write(tmp_path, good("A-1"), good("A-2"), good("A-3"))
    pages, _ = run(path, page_size=2)
    assert keys(run(path, pages[0].cursor)[0]) == ["A-3"]


def test_a_cursor_in_the_earlier_format_still_resumes(tmp_path: Path) -> None:
    path = write(tmp_path, good("A-1"), good("A-2"), good("A-3", "2026-11-21T08:00:00Z"))
    assert keys(run(path, json.dumps(["2026-11-20T10:00:00Z", "A-2"]))[0]) == ["A-3"]


def test_an_unreadable_cursor_reads_from_the_start(tmp_path: Path) -> None:
    path = write(tmp_path, good("A-1"))
    assert keys(run(path, "not json")[0]) == ["A-1"]
