"""A local file rewritten in place while it is parsed has none of its new bytes parsed (review own8).

The parse was capped at the hashed size but read the same inode: an ERP rewriting the file with
``open(..., "wb")`` (truncated, same inode) after the hash had its new bytes parsed up to the old size, a row
cut in half ("1005;DHL;JJD00055"), and the file was recorded as the version hashed, so the bogus parcel stayed
in Karla after the next poll read the whole row. Now the page is held back and the file is read anew later.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adapters.base import AdapterContext, Page
from adapters.csv import CsvAdapter, CsvConfig
from adapters.csv.files import Hashed
from adapters.csv.local import LocalFolder

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
HEADER = b"order_number;carrier;tracking_number\n"
FIRST = HEADER + b"1001;DHL;JJD0001\n1002;DHL;JJD0002\n"
LONGER = HEADER + b"1001;DHL;JJD0001\n1005;DHL;JJD0005555555\n"  # the ERP's next export, written over FIRST


class _RewriteAfterHash(LocalFolder):
    """The ERP rewrites the file in place (``open("wb")``: same inode) between the hash and the parse."""

    def __init__(self, root: Path, new: bytes) -> None:
        super().__init__(root)
        self.new = new

    @contextmanager
    def pinned(self, name: str, hashed: os.stat_result, size: int) -> Iterator[Hashed | None]:
        with super().pinned(name, hashed, size) as local:
            with open(self.root / name, "wb") as f:
                f.write(self.new)
            yield local


def _adapter(folder: Path, files: LocalFolder | None = None, **config: object) -> CsvAdapter:
    context = AdapterContext(source="t", clock=lambda: NOW, log=logging.getLogger("adapters.rewritten"))
    return CsvAdapter("t", CsvConfig(url=f"file://{folder}", settle_seconds=0, **config), context, files=files)


def _parcels(pages: list[Page]) -> list[str]:
    return [t.tracking_number for p in pages for r in p.records for t in r.trackings]


def _marks(pages: list[Page]) -> list[tuple[int, str]]:
    return [(m.size, m.sha256) for p in pages for m in p.done_files]


@pytest.mark.parametrize("new", [LONGER, HEADER + b"1001;DHL;JJD0001\n"], ids=["longer", "shorter"])
def test_a_file_rewritten_after_the_hash_is_not_parsed_nor_marked(tmp_path: Path, new: bytes, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "fulfillments_1.csv").write_bytes(FIRST)
    with caplog.at_level(logging.INFO, logger="adapters.rewritten"):
        pages = list(_adapter(tmp_path, _RewriteAfterHash(tmp_path, new)).read("fulfillments", None))
    assert _parcels(pages) == [] and _marks(pages) == []  # before: JJD0001, JJD00055 and FIRST's mark
    assert "fulfillments_1.csv changed while being read; it is read on a later run" in caplog.text
    pages = list(_adapter(tmp_path).read("fulfillments", None))  # the next poll reads the new version whole
    assert _parcels(pages) == [line.split(b";")[2].decode() for line in new.splitlines()[1:]]
    assert _marks(pages) == [(len(new), hashlib.sha256(new).hexdigest())]


def test_pages_handed_on_before_a_rewrite_stand_and_the_rest_is_held_back(tmp_path: Path) -> None:
    path = tmp_path / "fulfillments_1.csv"
    path.write_bytes(FIRST)
    reader = _adapter(tmp_path, page_size=1).read("fulfillments", None)
    first = next(reader)  # parsed from the bytes hashed, handed to the engine
    with open(path, "wb") as f:
        f.write(LONGER)
    rest = list(reader)
    assert _parcels([first]) == ["JJD0001"] and _parcels(rest) == [] and _marks(rest) == []


def test_a_file_appended_to_between_pages_is_read_as_hashed(tmp_path: Path) -> None:
    """An append leaves the hashed bytes as they were (they hash the same again): the version hashed is read to
    its end and marked, as before; the appended rows are its next version's, read on a later poll."""
    path = tmp_path / "fulfillments_1.csv"
    path.write_bytes(FIRST)
    reader = _adapter(tmp_path, page_size=1).read("fulfillments", None)
    first = next(reader)
    with open(path, "ab") as f:
        f.write(b"1003;DHL;JJD0003")  # half a row
    rest = list(reader)
    assert _parcels([first, *rest]) == ["JJD0001", "JJD0002"]
    assert _marks(rest) == [(len(FIRST), hashlib.sha256(FIRST).hexdigest())]
