"""Rows out of a CSV byte stream, with physical line numbers and per-line decoding.

Decoding line by line means one byte that is not valid in the configured encoding spoils only the row
that contains it: that row is reported with its line number and the rest of the file goes on. The same
holds for what the ``csv`` module refuses (a field over its size limit, usually an unbalanced quote
that swallowed the lines after it): that stretch of lines becomes one problem row, reading goes on.
An unbalanced quote that swallows fewer lines is caught by what it leaves: a row with the wrong number
of fields, a quoted field holding whole rows, or a quoted field still open at the end of the file.
A cell written Excel-safe (``="01067"``, keeping a leading zero) is read as its value (``01067``).
What spoils the whole file (a UTF-16 file, a header line not valid in the encoding) is a ``FileProblem``;
what a line's bytes say about the encoding is in ``encoding``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Collection, Iterator
from typing import BinaryIO, NamedTuple

from adapters.csv.encoding import FileProblem, check_header
from adapters.csv.lines import Lines

__all__ = ["FileProblem", "Joined", "Row", "detect_delimiter", "header_key", "line_keys", "read_keys", "read_rows"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def header_key(name: str) -> str:
    """A column name as compared: Excel and Windows ERPs write ``Email`` or ``SKU`` for ``email``, ``sku``."""
    return name.strip().casefold()


class Row(NamedTuple):
    """One CSV record (a tuple: hundreds of thousands are made per file)."""

    line: int  # physical line where the row starts (1 = header)
    values: list[str]  # in header order: a list, not a dict, keeps a bucket of rows small in memory
    problem: str | None = None  # why the row cannot be used (decoding, column count, CSV syntax)


def detect_delimiter(header: str) -> str:
    """``,`` or ``;`` (or a tab), whichever the header uses most."""
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","




def _open(stream: BinaryIO, encoding: str, delimiter: str | None) -> tuple[Lines, Iterator[str], str, list[str], int]:
    """The lines, the delimiter, the header, and how many empty names its trailing delimiters added."""
    lines = Lines(stream, encoding)
    iterator = iter(lines)
    first = next(iterator, "").removeprefix("\ufeff")  # a BOM left by a codec that keeps it
    sep = delimiter or detect_delimiter(first)
    check_header(lines.bad)
    try:
        header = [h.strip() for h in next(csv.reader([first], delimiter=sep), [])]
    except csv.Error:  # a header over the field size limit: no usable column names
        header = []
    named = len(header)
    while header and not header[-1]:
        header.pop()  # a trailing delimiter (as Excel may write on every line) names no column
    return lines, iterator, sep, header, named - len(header)


def _trailing(values: list[str], width: int) -> bool:
    """Whether a row's fields beyond the header's are all empty (a trailing delimiter): they are dropped. A row
    with fewer fields is not padded: a field missing in the middle would shift every later column."""
    return not "".join(values[width:]).strip()


def _is_header(values: list[str], keys: list[str]) -> bool:
    """Whether a row repeats the header (exports joined with ``cat``): called only when its first field does."""
    width = len(keys)
    return [header_key(v) for v in values[:width]] == keys and _trailing(values, width)


def _unwrap(value: str) -> str:
    """``="01067"`` → ``01067``: Excel's way to keep leading zeros (zip codes, SKUs), as ERPs write it for Excel."""
    cell = value.strip()
    if cell[:2] == '="' and cell[-1:] == '"' and len(cell) > 2:
        return cell[2:-1].replace('""', '"')
    return value


def _blank(values: list[str]) -> bool:
    return not values or not "".join(values).strip()  # one C call, not a generator per row


def _bad_line(bad: dict[int, str], start: int, end: int) -> str | None:
    return next((f"line {n}: {bad[n]}" for n in range(start, end + 1) if n in bad), None)


def _lines(start: int, end: int) -> str:
    return f"line {start}" if start == end else f"lines {start}-{end}"


_JOINED = " (an unbalanced quote may have joined these lines)"
_WIDE = 6  # columns from which one line inside a quoted field with a row's delimiters is taken for a row


def _holds_rows(values: list[str], sep: str, width: int) -> bool:
    """Whether a quoted field holds a line with as many delimiters as a whole row: the lines after a quote
    that was never closed, not an address or note with line breaks (those have few delimiters). A stray
    quote closed in the same column one line later joins two lines into a row of the right width, which no
    test tells from a valid note with commas across its line break ("Bitte klingeln, Hinterhaus,\nDanke,
    LG"): that one passes, as the note must."""
    need = width - 1
    rows = sum(part.count(sep) >= need for value in values if "\n" in value or "\r" in value
               for part in _LINE_BREAK.split(value)[1:])
    # In a narrow file one address line may hold as many commas as a row ("c/o Meyer, Hinterhaus, 2. OG"):
    # there, only two such lines are taken for swallowed rows.
    return need > 0 and rows >= (1 if width >= _WIDE else 2)


class Joined(str):
    """The problem of a row spanning several lines, with the file's delimiter (``sep``): its letter names the
    orders at the start of those lines (``line_keys``). A str, so it is worded, compared and pickled as one."""

    sep: str


def _joined(problem: str, sep: str) -> Joined:
    joined = Joined(problem)
    joined.sep = sep
    return joined


def line_keys(row: Row, index: int | None, header: list[str]) -> list[str]:
    """The key (column ``index``) at the start of each line a ``Joined`` row spans, as far as it can be read:
    an unbalanced quote swallows the rows after it, and no other letter names their orders. The row's text
    is cut back into its lines (the quotes the ``csv`` module took out stay out); a line after the first
    counts only with a row's worth of delimiters (not an address's second line), and not a repeated header."""
    sep = getattr(row.problem, "sep", None)
    if sep is None or index is None or index >= len(header):
        return []
    width, name = len(header), header_key(header[index])
    keys = [_first_key(row.values, index, width, sep)]
    for line in _LINE_BREAK.split(sep.join(row.values))[1:]:
        if line.count(sep) < width - 1:
            continue
        try:
            cells = next(csv.reader([line], delimiter=sep), [])
        except csv.Error:
            continue
        keys.append(cells[index] if index < len(cells) else "")
    keys = [(_unwrap(k) if '="' in k else k).strip() for k in keys]
    return list(dict.fromkeys(k for k in keys if k and header_key(k) != name))


def _first_key(values: list[str], index: int, width: int, sep: str) -> str:
    """The key of a joined row's first line. The fields before the one holding a line break are the ``csv``
    module's own. A quote opened in that field and left open holds the rest of the line, where a delimiter
    meant to be quoted (``"Hose, blau``) shifts every later field: those are counted from the line's end."""
    at = next((n for n, v in enumerate(values) if "\n" in v or "\r" in v), len(values))
    if index < at:
        return values[index]
    try:
        rest = next(csv.reader([_LINE_BREAK.split(values[at])[0]], delimiter=sep), [])
    except csv.Error:
        return ""
    if len(rest) > width - at and _trailing(rest, width - at):
        del rest[width - at:]  # a trailing delimiter, as ``read_rows`` drops it
    if len(rest) < width - at:  # the line broke inside that field (an address): the row's own value
        return values[index] if index < len(values) else ""
    return rest[index - width]


def _shape(values: list[str], start: int, end: int, width: int, sep: str, at_end: bool) -> str | None:
    """Why a row's fields cannot be trusted, or None: only called for rows that are not one plain line."""
    where, joined = _lines(start, end), _JOINED if end > start else ""
    problem: str | None = None
    if len(values) != width:
        problem = f"has {len(values)} fields, the header has {width}"
        problem = f"{where}: {problem}{joined}" if joined else problem
    elif at_end:  # the reader ran out of lines inside a quoted field: a quote was never closed
        problem = f"{where}: a quoted field is not closed before the end of the file{joined}"
    elif joined and _holds_rows(values, sep, width):
        problem = f"{where}: a quoted field holds lines that look like rows of their own{joined}"
    return _joined(problem, sep) if problem and joined else problem


# C0 control characters but tab and line breaks (a quoted address's, or vertical tab and form feed, which
# FileMaker and some ERPs write as a line break in a cell): a NUL from a damaged write, an escape sequence
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")


def _control(values: list[str], header: list[str], used: Collection[int] | None) -> str | None:
    """The columns holding a control character: nothing a shop writes, invisible in Excel, and sent on it
    would reach Karla as a customer's name or an order's id (a NUL id collides with the next one's). Only
    the ``used`` columns count (None: all): one nothing reads (an ERP's notes) reaches no one, and a row
    lost over it would be an order lost for nothing."""
    found = [(i, m.group()) for i, v in enumerate(values) if (used is None or i in used) and (m := _CONTROL.search(v))]
    if not found:
        return None
    named = [header[i] if i < len(header) else f"field {i + 1}" for i, _ in found]
    return (f"{', '.join(named)} {'holds' if len(named) == 1 else 'hold'} a control character ({found[0][1]!r}), "
            "which no shop value has: remove it from the export")


def _short(count: int, full: int, sep: str) -> str:
    """A row one trailing delimiter short of its header's width, with its last field empty, in a file whose
    rows showed the trailing delimiter written: a field in the middle is missing (every later column shifted).
    Before such a row, or once a row ended in its last column's value without it, such a row is read as
    complete: a file written without the trailing delimiter has rows whose last column is empty."""
    return (f"has {count} fields, the header {full} with its trailing {sep!r}: a field is missing and every "
            "later column would be shifted (add the missing value, or an empty field for it)")


def read_keys(stream: BinaryIO, encoding: str, delimiter: str | None, index: int | None) -> Iterator[str]:
    """Just the value of column ``index`` per row, decoded and skipped exactly as ``read_rows`` does.

    A cheap first pass: it tells whether a file's rows are already grouped by order (see ``grouping``).
    A stretch the ``csv`` module refuses yields ``""``, the key of ``read_rows``' problem row for it.
    """
    _, iterator, sep, header, _ = _open(stream, encoding, delimiter)
    keys = [header_key(h) for h in header]
    first = keys[0] if keys else None
    reader = csv.reader(iterator, delimiter=sep)
    while True:
        try:  # around the whole loop, not each row: no cost on the hot path
            for values in reader:
                if not _blank(values) and not (header_key(values[0]) == first and _is_header(values, keys)):
                    key = values[index] if index is not None and index < len(values) else ""
                    yield (_unwrap(key) if '="' in key else key).strip()  # as ``read_rows`` reads it
            return
        except csv.Error:
            yield ""  # the reader starts afresh on the next line


def read_rows(stream: BinaryIO, encoding: str, delimiter: str | None,
              repeated: Callable[[list[int]], None] | None = None,
              used: Callable[[list[str]], Collection[int]] | None = None) -> tuple[list[str], Iterator[Row]]:
    """The header (as found) and an iterator of rows keyed by header name; ``FileProblem`` when no row can be
    read. Rows repeating the header are skipped; ``repeated`` is told their lines once the rows are read.
    ``used``: the indexes of the columns the caller reads, given the header (None: all): a control character
    elsewhere spoils no row."""
    lines, iterator, sep, header, trailing = _open(stream, encoding, delimiter)
    read = set(used(header)) if used is not None else None
    width, keys = len(header), [header_key(h) for h in header]
    full = width + trailing  # the fields of a row written as the header, trailing delimiters and all
    first = keys[0] if keys else None

    def rows() -> Iterator[Row]:
        reader = csv.reader(iterator, delimiter=sep)
        previous, skipped = 1, []
        # whether a row showed this file's rows written with the header's trailing delimiter(s), or without
        trailed, bare = False, False
        while True:
            try:  # around the whole loop, not each row: no cost on the hot path
                for values in reader:
                    start, end = previous + 1, lines.number
                    previous = end
                    if not values or not (text := "".join(values)).strip():  # blank (``_blank``, its join reused)
                        continue
                    if "=" in text and '="' in text:  # Excel-safe cells, rare: a memchr on the join made above
                        values = [_unwrap(v) for v in values]
                    count = len(values)
                    if count > width and _trailing(values, width):
                        del values[width:]
                    if header_key(values[0]) == first and _is_header(values, keys):
                        skipped.append(start)
                        continue
                    problem = _bad_line(lines.bad, start, end) if lines.bad else None
                    if problem is None and (end > start or len(values) != width or lines.ended):
                        problem = _shape(values, start, end, width, sep, lines.ended)
                    if problem is None and count < full:  # only where the header ends in a delimiter
                        if count == width:  # a field missing, the trailing delimiter written; or none written
                            bare = bare or bool(values[-1].strip())
                            problem = _short(count, full, sep) if trailed and not bare else None
                    elif count >= full:
                        trailed = True
                    # the join made above: a C scan of its characters, the regex only for rows it doubts
                    if problem is None and not text.isprintable() and _CONTROL.search(text):
                        problem = _control(values, header, read)
                    yield Row(start, [v.strip() for v in values], problem)
                if skipped and repeated:
                    repeated(skipped)
                return
            except csv.Error as exc:  # the reader drops the rest of this line and starts afresh on the next
                start, end = previous + 1, lines.number
                previous = end
                if end in lines.refused:
                    yield Row(start, [], f"{_lines(start, end)}: {lines.bad[end]}")
                else:
                    yield Row(start, [], f"{_lines(start, end)}: not readable as CSV ({exc}){_JOINED if end > start else ''}")

    return header, rows()
