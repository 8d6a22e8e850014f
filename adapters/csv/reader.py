"""Rows out of a CSV byte stream, with physical line numbers and per-line decoding.

Decoding line by line means one byte that is not valid in the configured encoding spoils only the row
that contains it: that row is reported with its line number and the rest of the file goes on. The same
holds for what the ``csv`` module refuses (a field over its size limit, usually an unbalanced quote
that swallowed the lines after it): that stretch of lines becomes one problem row, reading goes on.
An unbalanced quote that swallows fewer lines is caught by what it leaves: a row with the wrong number
of fields, a quoted field holding whole rows, or a quoted field still open at the end of the file.
What spoils the whole file (a UTF-16 file, a header line not valid in the encoding) is a ``FileProblem``.
"""

from __future__ import annotations

import codecs
import csv
import functools
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple

from connector.errors import ConfigError

__all__ = ["FileProblem", "Row", "detect_delimiter", "header_key", "read_keys", "read_rows"]

# A physical line this long is no CSV row (a lost line end, a binary file): it becomes a dead letter, read
# past a block at a time, so one huge line costs no more memory than this.
_MAX_LINE = 1 << 20
_CHUNK = 1 << 16  # bytes per read (see ``_Lines``)
# What the csv module is handed for such a line: it refuses it ("new-line character seen in unquoted field"),
# so both passes (``read_keys``, ``read_rows``) turn it into the same problem row as any unreadable stretch.
_REFUSED = "\r\x00\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Byte order marks of encodings whose line end is not the byte \n (UTF-32 LE first: it starts with UTF-16 LE's).
_UTF16 = "UTF-16 file (Excel 'Unicode text')"
_WIDE_BOMS = {codecs.BOM_UTF32_LE: "UTF-32 file", codecs.BOM_UTF32_BE: "UTF-32 file", codecs.BOM_UTF16_LE: _UTF16,
              codecs.BOM_UTF16_BE: _UTF16}


class FileProblem(ValueError):
    """Why no row of a file can be read (its encoding, its header line): the file is one dead letter."""


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


def line_codec(encoding: str) -> str:
    """The codec each line is decoded with. Lines are split on the byte ``\\n``, so an encoding that writes
    a line end (or a delimiter or quote) otherwise, UTF-16 and UTF-32 above all, would read as garbage
    row after row: it is refused at start (the source's config), naming the setting to change."""
    name = codecs.lookup(encoding).name
    codec = "utf-8" if name == "utf-8-sig" else name  # the BOM is handled once, on the first line
    probe = "\r\n,;\t\""
    try:
        ascii_based = probe.encode(codec) == probe.encode("ascii")
    except UnicodeError:
        ascii_based = False
    if not ascii_based:
        raise ConfigError(f"encoding = {encoding!r}: files in this encoding cannot be read (a line end is not the "
                          "byte \\n in it); export the files as UTF-8 and set encoding = \"utf-8-sig\"")
    return codec


class _Lines:
    """Decodes physical lines and remembers which ones were not valid in the encoding.

    The stream is read in blocks of ``_CHUNK`` bytes split on every line break (``\\n``, ``\\r\\n``, and a
    lone ``\\r`` as old Excel for Mac writes them, as an editor shows the lines): one C-level split per
    block, faster than a ``readline`` per line, and memory stays at about a block whatever the line ends.
    An unfinished last line, or a CR that may be half of a CRLF, is carried into the next block; a line
    that grows to ``_MAX_LINE`` is refused and read past.
    """

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        self.read = functools.partial(stream.read, _CHUNK)
        self.encoding = encoding
        self.codec = line_codec(encoding)
        self.utf8 = self.codec == "utf-8"
        self.number = 0
        self.bad: dict[int, str] = {}
        self.refused: set[int] = set()  # lines over _MAX_LINE (also in ``bad``)
        self.ended = False  # set once the stream is exhausted: a record completed then ran into the file's end

    def __iter__(self) -> Iterator[str]:
        block = self.read()
        if what := next((what for bom, what in _WIDE_BOMS.items() if block.startswith(bom)), None):
            raise FileProblem(f"{what}: save it as 'CSV UTF-8' and upload it again")
        if block.startswith(codecs.BOM_UTF8):  # the BOM says UTF-8 whatever the setting, as browsers read it
            if not self.utf8:
                self.encoding = "utf-8 (the file starts with a UTF-8 byte order mark)"
            block, self.codec, self.utf8 = block[len(codecs.BOM_UTF8):], "utf-8", True
        codec, tail = self.codec, b""
        while block:
            data = tail + block if tail else block
            pieces = data.splitlines(keepends=True)
            tail = b"" if pieces[-1][-1] == 10 else pieces.pop()  # bytes split on \r, \n and \r\n only
            # a few C passes per block, the cost of splitting it: only lines with a UTF-8 sequence are decoded twice
            if self.utf8 or data.isascii() or (marks := data.translate(_UTF8_MARKS)).find(b"LC") < 0:
                for raw in pieces:
                    self.number += 1
                    try:
                        yield raw.decode(codec)
                    except UnicodeDecodeError as exc:
                        yield self._bad(raw, exc)
            else:
                yield from self._suspect(pieces, marks)
            if len(tail) >= _MAX_LINE:
                after_cr, tail = tail[-1] == 13, b""
                yield self._refuse()
                block = self._rest(after_cr) or self.read()
            else:
                block = self.read()
        if tail:
            yield self._decode(tail)
        self.ended = True

    def _suspect(self, pieces: list[bytes], marks: bytes) -> Iterator[str]:
        """The lines of a block that holds a UTF-8 sequence (``marks``: the block translated by ``_UTF8_MARKS``)
        under another codec: only the lines holding one are decoded as UTF-8 too, found by their offset."""
        offset, at = 0, marks.find(b"LC")
        for raw in pieces:
            self.number += 1
            offset += len(raw)
            try:
                text = raw.decode(self.codec)
            except UnicodeDecodeError as exc:
                text = self._bad(raw, exc)
            if offset > at:  # the line holds the sequence at ``at``: check it, then skip the line's other ones
                if self.number not in self.bad:
                    self._utf8(raw)
                at = marks.find(b"LC", offset)
                at = len(marks) if at < 0 else at
            yield text

    def _decode(self, raw: bytes) -> str:
        self.number += 1
        try:
            text = raw.decode(self.codec)
        except UnicodeDecodeError as exc:
            return self._bad(raw, exc)
        if not self.utf8 and b"LC" in raw.translate(_UTF8_MARKS):
            self._utf8(raw)
        return text

    def _utf8(self, raw: bytes) -> None:
        """Notes a line that is valid UTF-8 with non-ASCII bytes under another codec: read as configured it would
        go out as mojibake (``MÃ¼nchen``); text in cp1252 or latin-1 almost never forms valid UTF-8 sequences."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return
        start = _HIGH.search(raw).start()  # type: ignore[union-attr]  # (the line is not ASCII)
        char = _NON_ASCII.search(text)[0]  # type: ignore[index]
        misread = raw[start:start + len(char.encode())].decode(self.codec, errors="replace")
        self.bad[self.number] = f"{misread!r} at column {start + 1} is UTF-8 {char!r} read as {self.encoding}{_UTF8_HINT}"

    def _refuse(self) -> str:
        self.number += 1
        self.refused.add(self.number)
        self.bad[self.number] = f"longer than {_MAX_LINE >> 20} MB, not read (a missing line end, or not a CSV file?)"
        return _REFUSED

    def _rest(self, after_cr: bool) -> bytes:
        """What follows the end of an over-long line, reading past it a block at a time (``after_cr``: the line
        ended in a CR, so a LF right after it is the same line end)."""
        block = b"\r" if after_cr else b""
        while (cut := _first_break(block)) == -1:
            if not (block := self.read()):
                return b""
        rest = block[cut + 1:]
        if block[cut] == 13:
            rest = rest or self.read()
            rest = rest[1:] if rest[:1] == b"\n" else rest
        return rest

    def _bad(self, raw: bytes, exc: UnicodeDecodeError) -> str:
        reason = f"byte {raw[exc.start:exc.start + 1]!r} at column {exc.start + 1} is not valid {self.encoding}"
        if self.utf8:
            hint = _CP1252_HINT if not self.encoding.endswith("mark)") else _BOM_HINT  # the setting cannot help there
            self.bad[self.number] = reason + (hint if _decodes(raw, "cp1252") else "")
        else:  # UTF-8 "Ł" holds a byte cp1252 leaves undefined
            self.bad[self.number] = reason + (_UTF8_HINT if _decodes(raw, "utf-8") else "")
        return raw.decode(self.codec, errors="replace")


def _first_break(block: bytes) -> int:
    found = [i for i in (block.find(b"\r"), block.find(b"\n")) if i != -1]
    return min(found) if found else -1


# The usual cause is an export from a Windows ERP, not a damaged row: then no row needs fixing, the setting does.
_CP1252_HINT = ' (this looks like Windows-1252: set encoding = "cp1252" for this source, then run dlq retry)'
_UTF8_HINT = ' (this looks like UTF-8: set encoding = "utf-8-sig" for this source, then run dlq retry)'
_HIGH, _NON_ASCII = re.compile(rb"[\x80-\xff]"), re.compile(r"[^\x00-\x7f]")
# Every non-ASCII UTF-8 character starts with a lead byte and a continuation byte: translated by this table
# ("L", "C", else "."), bytes without b"LC" cannot be UTF-8 beyond ASCII (cp1252 text almost never has it).
_UTF8_MARKS = bytes(76 if 0xC2 <= b <= 0xF4 else 67 if 0x80 <= b <= 0xBF else 46 for b in range(256))
_BOM_HINT = (" (this looks like Windows-1252 behind a UTF-8 byte order mark, which makes any file read as UTF-8: "
             "export the file as UTF-8, or without the mark, and put it back)")


def _decodes(raw: bytes, codec: str) -> bool:
    """Whether the line decodes in ``codec`` (Windows-1252 leaves only five byte values undefined)."""
    try:
        raw.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _open(stream: BinaryIO, encoding: str, delimiter: str | None) -> tuple[_Lines, Iterator[str], str, list[str]]:
    lines = _Lines(stream, encoding)
    iterator = iter(lines)
    first = next(iterator, "").removeprefix("\ufeff")  # a BOM left by a codec that keeps it
    sep = delimiter or detect_delimiter(first)
    if 1 in lines.bad:  # column names read with replacement characters would silently miss their columns
        raise FileProblem(f"the header (line 1) cannot be read: {lines.bad[1]}; no row of the file was read")
    try:
        header = [h.strip() for h in next(csv.reader([first], delimiter=sep), [])]
    except csv.Error:  # a header over the field size limit: no usable column names
        header = []
    while header and not header[-1]:
        header.pop()  # a trailing delimiter (as Excel may write on every line) names no column
    return lines, iterator, sep, header


def _trailing(values: list[str], width: int) -> bool:
    """Whether a row's fields beyond the header's are all empty (a trailing delimiter): they are dropped. A row
    with fewer fields is not padded: a field missing in the middle would shift every later column."""
    return not "".join(values[width:]).strip()


def _is_header(values: list[str], keys: list[str]) -> bool:
    """Whether a row repeats the header (exports joined with ``cat``): called only when its first field does."""
    width = len(keys)
    return [header_key(v) for v in values[:width]] == keys and _trailing(values, width)


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
    that was never closed, not an address or note with line breaks (those have few delimiters)."""
    need = width - 1
    rows = sum(part.count(sep) >= need for value in values if "\n" in value or "\r" in value
               for part in _LINE_BREAK.split(value)[1:])
    # In a narrow file one address line may hold as many commas as a row ("c/o Meyer, Hinterhaus, 2. OG"):
    # there, only two such lines are taken for swallowed rows.
    return need > 0 and rows >= (1 if width >= _WIDE else 2)


def _shape(values: list[str], start: int, end: int, width: int, sep: str, at_end: bool) -> str | None:
    """Why a row's fields cannot be trusted, or None: only called for rows that are not one plain line."""
    where, joined = _lines(start, end), _JOINED if end > start else ""
    if len(values) != width:
        problem = f"has {len(values)} fields, the header has {width}"
        return f"{where}: {problem}{joined}" if joined else problem
    if at_end:  # the reader ran out of lines inside a quoted field: a quote was never closed
        return f"{where}: a quoted field is not closed before the end of the file{joined}"
    if joined and _holds_rows(values, sep, width):
        return f"{where}: a quoted field holds lines that look like rows of their own{joined}"
    return None


def read_keys(stream: BinaryIO, encoding: str, delimiter: str | None, index: int | None) -> Iterator[str]:
    """Just the value of column ``index`` per row, decoded and skipped exactly as ``read_rows`` does.

    A cheap first pass: it tells whether a file's rows are already grouped by order (see ``grouping``).
    A stretch the ``csv`` module refuses yields ``""``, the key of ``read_rows``' problem row for it.
    """
    _, iterator, sep, header = _open(stream, encoding, delimiter)
    keys = [header_key(h) for h in header]
    first = keys[0] if keys else None
    reader = csv.reader(iterator, delimiter=sep)
    while True:
        try:  # around the whole loop, not each row: no cost on the hot path
            for values in reader:
                if not _blank(values) and not (header_key(values[0]) == first and _is_header(values, keys)):
                    yield values[index].strip() if index is not None and index < len(values) else ""
            return
        except csv.Error:
            yield ""  # the reader starts afresh on the next line


def read_rows(stream: BinaryIO, encoding: str, delimiter: str | None,
              repeated: Callable[[list[int]], None] | None = None) -> tuple[list[str], Iterator[Row]]:
    """The header (as found) and an iterator of rows keyed by header name; ``FileProblem`` when no row can be
    read. Rows repeating the header are skipped; ``repeated`` is told their lines once the rows are read."""
    lines, iterator, sep, header = _open(stream, encoding, delimiter)
    width, keys = len(header), [header_key(h) for h in header]
    first = keys[0] if keys else None

    def rows() -> Iterator[Row]:
        reader = csv.reader(iterator, delimiter=sep)
        previous, skipped = 1, []
        while True:
            try:  # around the whole loop, not each row: no cost on the hot path
                for values in reader:
                    start, end = previous + 1, lines.number
                    previous = end
                    if _blank(values):
                        continue
                    if len(values) > width and _trailing(values, width):
                        del values[width:]
                    if header_key(values[0]) == first and _is_header(values, keys):
                        skipped.append(start)
                        continue
                    problem = _bad_line(lines.bad, start, end) if lines.bad else None
                    if problem is None and (end > start or len(values) != width or lines.ended):
                        problem = _shape(values, start, end, width, sep, lines.ended)
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
