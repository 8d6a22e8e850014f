"""Rows out of a CSV byte stream, with physical line numbers and per-line decoding.

Decoding line by line means one byte that is not valid in the configured encoding spoils only the row
that contains it: that row is reported with its line number and the rest of the file goes on.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

__all__ = ["Row", "detect_delimiter", "read_keys", "read_rows"]


class Row(NamedTuple):
    """One CSV record (a tuple: hundreds of thousands are made per file)."""

    line: int  # physical line where the row starts (1 = header)
    values: list[str]  # in header order: a list, not a dict, keeps a bucket of rows small in memory
    problem: str | None = None  # why the row cannot be used (decoding, column count)


def detect_delimiter(header: str) -> str:
    """``,`` or ``;`` (or a tab), whichever the header uses most."""
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


class _Lines:
    """Decodes physical lines and remembers which ones were not valid in the encoding."""

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        self.stream, self.encoding = stream, encoding
        self.number = 0
        self.bad: dict[int, str] = {}
        self.first = True

    def __iter__(self) -> Iterator[str]:
        for raw in self.stream:
            self.number += 1
            if self.first and self.encoding.replace("_", "-").lower() in ("utf-8-sig", "utf8-sig"):
                raw = raw.removeprefix(codecs.BOM_UTF8)
            self.first = False
            try:
                yield raw.decode(self.encoding.replace("-sig", "") if "sig" in self.encoding else self.encoding)
            except UnicodeDecodeError as exc:
                self.bad[self.number] = f"byte {raw[exc.start:exc.start + 1]!r} at column {exc.start + 1} is not valid {self.encoding}"
                yield raw.decode(self.encoding.replace("-sig", ""), errors="replace")


def _open(stream: BinaryIO, encoding: str, delimiter: str | None) -> tuple[_Lines, Iterator[str], str, list[str]]:
    lines = _Lines(stream, encoding)
    iterator = iter(lines)
    first = next(iterator, "")
    sep = delimiter or detect_delimiter(first)
    return lines, iterator, sep, [h.strip() for h in next(csv.reader([first], delimiter=sep), [])]


def _blank(values: list[str]) -> bool:
    return not values or not "".join(values).strip()  # one C call, not a generator per row


def _bad_line(bad: dict[int, str], start: int, end: int) -> str | None:
    return next((f"line {n}: {bad[n]}" for n in range(start, end + 1) if n in bad), None)


def read_keys(stream: BinaryIO, encoding: str, delimiter: str | None, index: int | None) -> Iterator[str]:
    """Just the value of column ``index`` per row, decoded and skipped exactly as ``read_rows`` does.

    A cheap first pass: it tells whether a file's rows are already grouped by order (see ``grouping``).
    """
    _, iterator, sep, _ = _open(stream, encoding, delimiter)
    for values in csv.reader(iterator, delimiter=sep):
        if not _blank(values):
            yield values[index].strip() if index is not None and index < len(values) else ""


def read_rows(stream: BinaryIO, encoding: str, delimiter: str | None) -> tuple[list[str], Iterator[Row]]:
    """The header (as found) and an iterator of rows keyed by header name."""
    lines, iterator, sep, header = _open(stream, encoding, delimiter)

    def rows() -> Iterator[Row]:
        reader = csv.reader(iterator, delimiter=sep)
        previous = 1
        for values in reader:
            start, end = previous + 1, lines.number
            previous = end
            if _blank(values):
                continue
            problem = _bad_line(lines.bad, start, end) if lines.bad else None
            if problem is None and len(values) != len(header):
                problem = f"has {len(values)} fields, the header has {len(header)}"
            yield Row(start, [v.strip() for v in values], problem)

    return header, rows()
