"""Encoding checks for CSV lines (``lines.Lines`` decodes; this says what went wrong and what to set).

A byte order mark decides the encoding of the whole file (UTF-16/32 cannot be read line by line at all),
a header line not valid in the encoding spoils every column name (``FileProblem``), and a row valid in
the encoding may still be UTF-8 read as cp1252 (``MÃ¼nchen``). The usual cause is an export from a
Windows ERP, not a damaged row: then no row needs fixing, the setting does, and the hints say which.
"""

from __future__ import annotations

import codecs
import re

from connector.errors import ConfigError

__all__ = ["UTF8_MARKS", "FileProblem", "check_header", "line_codec", "misread_utf8", "undecodable", "utf8_bom"]

# Byte order marks of encodings whose line end is not the byte \n (UTF-32 LE first: it starts with UTF-16 LE's).
_UTF16 = "UTF-16 file (Excel 'Unicode text')"
_WIDE_BOMS = {codecs.BOM_UTF32_LE: "UTF-32 file", codecs.BOM_UTF32_BE: "UTF-32 file", codecs.BOM_UTF16_LE: _UTF16,
              codecs.BOM_UTF16_BE: _UTF16}
_CP1252_HINT = ' (this looks like Windows-1252: set encoding = "cp1252" for this source, then run dlq retry)'
_UTF8_HINT = ' (this looks like UTF-8: set encoding = "utf-8-sig" for this source, then run dlq retry)'
_HIGH, _NON_ASCII = re.compile(rb"[\x80-\xff]"), re.compile(r"[^\x00-\x7f]")
# Every non-ASCII UTF-8 character starts with a lead byte and a continuation byte: translated by this table
# ("L", "C", else "."), bytes without b"LC" cannot be UTF-8 beyond ASCII (cp1252 text almost never has it).
UTF8_MARKS = bytes(76 if 0xC2 <= b <= 0xF4 else 67 if 0x80 <= b <= 0xBF else 46 for b in range(256))
_BOM_HINT = (" (this looks like Windows-1252 behind a UTF-8 byte order mark, which makes any file read as UTF-8: "
             "export the file as UTF-8, or without the mark, and put it back)")


class FileProblem(ValueError):
    """Why no row of a file can be read (its encoding, its header line): the file is one dead letter."""


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


def utf8_bom(block: bytes, encoding: str, utf8: bool) -> tuple[bytes, str] | None:
    """The first block without its UTF-8 byte order mark, and the encoding to name in letters, if it has one
    (the BOM says UTF-8 whatever the setting, as browsers read it); None if not. A UTF-16/32 mark is a
    ``FileProblem``: such a file cannot be split on the byte ``\\n``."""
    if what := next((what for bom, what in _WIDE_BOMS.items() if block.startswith(bom)), None):
        raise FileProblem(f"{what}: save it as 'CSV UTF-8' and upload it again")
    if not block.startswith(codecs.BOM_UTF8):
        return None
    return block[len(codecs.BOM_UTF8):], encoding if utf8 else "utf-8 (the file starts with a UTF-8 byte order mark)"


def check_header(bad: dict[int, str]) -> None:
    """Column names read with replacement characters would silently miss their columns: no row is read."""
    if 1 in bad:
        raise FileProblem(f"the header (line 1) cannot be read: {bad[1]}; no row of the file was read")


def misread_utf8(raw: bytes, codec: str, encoding: str) -> str | None:
    """Why a line valid under another codec is refused, if it is valid UTF-8 with non-ASCII bytes: read as
    configured it would go out as mojibake (``MÃ¼nchen``); text in cp1252 or latin-1 almost never forms valid
    UTF-8 sequences. None if it is not UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    start = _HIGH.search(raw).start()  # type: ignore[union-attr]  # (the line is not ASCII)
    char = _NON_ASCII.search(text)[0]  # type: ignore[index]
    misread = raw[start:start + len(char.encode())].decode(codec, errors="replace")
    return f"{misread!r} at column {start + 1} is UTF-8 {char!r} read as {encoding}{_UTF8_HINT}"


def undecodable(raw: bytes, exc: UnicodeDecodeError, encoding: str, utf8: bool) -> str:
    """Why a line is not valid in the encoding, with the setting that reads it if one would."""
    reason = f"byte {raw[exc.start:exc.start + 1]!r} at column {exc.start + 1} is not valid {encoding}"
    if utf8:
        hint = _CP1252_HINT if not encoding.endswith("mark)") else _BOM_HINT  # the setting cannot help there
        return reason + (hint if _decodes(raw, "cp1252") else "")
    return reason + (_UTF8_HINT if _decodes(raw, "utf-8") else "")  # UTF-8 "Ł" holds a byte cp1252 leaves undefined


def _decodes(raw: bytes, codec: str) -> bool:
    """Whether the line decodes in ``codec`` (Windows-1252 leaves only five byte values undefined)."""
    try:
        raw.decode(codec)
    except UnicodeDecodeError:
        return False
    return True
