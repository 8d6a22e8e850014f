"""Rows out of a CSV byte stream, with physical line numbers and per-line decoding.

Decoding line by line means one byte that is not valid in the configured encoding spoils only the row
that contains it: that row is reported with its line number and the rest of the file goes on. The same
holds for what the ``csv`` module refuses (a field over its size limit, usually an unbalanced quote
that swallowed the lines after it): that stretch of lines becomes one problem row, reading goes on.
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
    problem: str | None = None  # why the row cannot be used (decoding, column count, CSV syntax)


def detect_delimiter(header: str) -> str:
    """``,`` or ``;`` (or a tab), whichever the header uses most."""
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


class _Lines:
    """Decodes physical lines and remembers which ones were not valid in the encoding.

    A binary file splits on ``\\n`` only, so a CR-only file (old Excel for Mac) would arrive as one huge
    "line" that the ``csv`` module rejects. A line holding a ``\\r`` anywhere but in its closing ``\\r\\n``
    is split on every line break instead; the check is one C-level ``find`` per line.
    """

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        self.stream, self.encoding = stream, encoding
        self.number = 0
        self.bad: dict[int, str] = {}
        self.strip_bom = encoding.replace("_", "-").lower() in ("utf-8-sig", "utf8-sig")
        self.codec = encoding.replace("-sig", "") if "sig" in encoding else encoding
        self.utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")

    def __iter__(self) -> Iterator[str]:
        codec = self.codec
        first = True
        for raw in self.stream:
            if first:
                first = False
                if self.strip_bom:
                    raw = raw.removeprefix(codecs.BOM_UTF8)
            cr = raw.find(b"\r")
            if cr == -1 or (cr == len(raw) - 2 and raw[-1] == 10):  # LF or CRLF: the common case
                self.number += 1
                try:
                    yield raw.decode(codec)
                except UnicodeDecodeError as exc:
                    yield self._bad(raw, exc)
            else:
                yield from self._split(raw)

    def _split(self, raw: bytes) -> Iterator[str]:
        """A line with a lone ``\\r`` inside: one line per CR, LF or CRLF, as an editor shows them."""
        for part in raw.splitlines(keepends=True):
            self.number += 1
            try:
                yield part.decode(self.codec)
            except UnicodeDecodeError as exc:
                yield self._bad(part, exc)

    def _bad(self, raw: bytes, exc: UnicodeDecodeError) -> str:
        reason = f"byte {raw[exc.start:exc.start + 1]!r} at column {exc.start + 1} is not valid {self.encoding}"
        self.bad[self.number] = reason + (_CP1252_HINT if self.utf8 and _is_cp1252(raw) else "")
        return raw.decode(self.codec, errors="replace")


# The usual cause is an export from a Windows ERP, not a damaged row: then no row needs fixing, the setting does.
_CP1252_HINT = ' (this looks like Windows-1252: set encoding = "cp1252" for this source, then run dlq retry)'


def _is_cp1252(raw: bytes) -> bool:
    """Whether the line decodes as Windows-1252, which leaves only five byte values undefined."""
    try:
        raw.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def _open(stream: BinaryIO, encoding: str, delimiter: str | None) -> tuple[_Lines, Iterator[str], str, list[str]]:
    lines = _Lines(stream, encoding)
    iterator = iter(lines)
    first = next(iterator, "")
    sep = delimiter or detect_delimiter(first)
    try:
        header = next(csv.reader([first], delimiter=sep), [])
    except csv.Error:  # a header over the field size limit: no usable column names
        header = []
    return lines, iterator, sep, [h.strip() for h in header]


def _blank(values: list[str]) -> bool:
    return not values or not "".join(values).strip()  # one C call, not a generator per row


def _bad_line(bad: dict[int, str], start: int, end: int) -> str | None:
    return next((f"line {n}: {bad[n]}" for n in range(start, end + 1) if n in bad), None)


def _lines(start: int, end: int) -> str:
    return f"line {start}" if start == end else f"lines {start}-{end}"


_JOINED = " (an unbalanced quote may have joined these lines)"


def read_keys(stream: BinaryIO, encoding: str, delimiter: str | None, index: int | None) -> Iterator[str]:
    """Just the value of column ``index`` per row, decoded and skipped exactly as ``read_rows`` does.

    A cheap first pass: it tells whether a file's rows are already grouped by order (see ``grouping``).
    A stretch the ``csv`` module refuses yields ``""``, the key of ``read_rows``' problem row for it.
    """
    _, iterator, sep, _ = _open(stream, encoding, delimiter)
    reader = csv.reader(iterator, delimiter=sep)
    while True:
        try:  # around the whole loop, not each row: no cost on the hot path
            for values in reader:
                if not _blank(values):
                    yield values[index].strip() if index is not None and index < len(values) else ""
            return
        except csv.Error:
            yield ""  # the reader starts afresh on the next line


def read_rows(stream: BinaryIO, encoding: str, delimiter: str | None) -> tuple[list[str], Iterator[Row]]:
    """The header (as found) and an iterator of rows keyed by header name."""
    lines, iterator, sep, header = _open(stream, encoding, delimiter)

    def rows() -> Iterator[Row]:
        reader = csv.reader(iterator, delimiter=sep)
        previous = 1
        while True:
            try:  # around the whole loop, not each row: no cost on the hot path
                for values in reader:
                    start, end = previous + 1, lines.number
                    previous = end
                    if _blank(values):
                        continue
                    problem = _bad_line(lines.bad, start, end) if lines.bad else None
                    if problem is None and len(values) != len(header):
                        problem = f"has {len(values)} fields, the header has {len(header)}"
                        if end > start:
                            problem = f"{_lines(start, end)}: {problem}{_JOINED}"
                    yield Row(start, [v.strip() for v in values], problem)
                return
            except csv.Error as exc:  # the reader drops the rest of this line and starts afresh on the next
                start, end = previous + 1, lines.number
                previous = end
                yield Row(start, [], f"{_lines(start, end)}: not readable as CSV ({exc}){_JOINED if end > start else ''}")

    return header, rows()
