"""Physical lines out of a CSV byte stream, decoded one by one, remembering which ones were not valid.

Apart from ``reader`` (which makes rows of them) because how lines are cut and decoded is a concern of its
own: blocks split on every line break, a line too long to be a row read past, UTF-8 met under another codec.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import BinaryIO

from adapters.csv.encoding import UTF8_MARKS, line_codec, misread_utf8, undecodable, utf8_bom

__all__ = ["REFUSED", "Lines"]

# A physical line this long is no CSV row (a lost line end, a binary file): it becomes a dead letter, read
# past a block at a time, so one huge line costs no more memory than this.
_MAX_LINE = 1 << 20
_CHUNK = 1 << 16  # bytes per read (see ``Lines``)
# What the csv module is handed for such a line: it refuses it ("new-line character seen in unquoted field"),
# so both passes (``read_keys``, ``read_rows``) turn it into the same problem row as any unreadable stretch.
REFUSED = "\r\x00\n"


class Lines:
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
        if (marked := utf8_bom(block, self.encoding, self.utf8)) is not None:
            (block, self.encoding), self.codec, self.utf8 = marked, "utf-8", True
        codec, tail = self.codec, b""
        while block:
            data = tail + block if tail else block
            pieces = data.splitlines(keepends=True)
            tail = b"" if pieces[-1][-1] == 10 else pieces.pop()  # bytes split on \r, \n and \r\n only
            # a few C passes per block, the cost of splitting it: only lines with a UTF-8 sequence are decoded twice
            if self.utf8 or data.isascii() or (marks := data.translate(UTF8_MARKS)).find(b"LC") < 0:
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
        """The lines of a block that holds a UTF-8 sequence (``marks``: the block translated by ``UTF8_MARKS``)
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
        if not self.utf8 and b"LC" in raw.translate(UTF8_MARKS):
            self._utf8(raw)
        return text

    def _utf8(self, raw: bytes) -> None:
        """Notes a line valid under another codec that is UTF-8 beyond ASCII (it would go out as mojibake)."""
        if why := misread_utf8(raw, self.codec, self.encoding):
            self.bad[self.number] = why

    def _refuse(self) -> str:
        self.number += 1
        self.refused.add(self.number)
        self.bad[self.number] = f"longer than {_MAX_LINE >> 20} MB, not read (a missing line end, or not a CSV file?)"
        return REFUSED

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
        self.bad[self.number] = undecodable(raw, exc, self.encoding, self.utf8)
        return raw.decode(self.codec, errors="replace")


def _first_break(block: bytes) -> int:
    found = [i for i in (block.find(b"\r"), block.find(b"\n")) if i != -1]
    return min(found) if found else -1
