"""A local file is parsed exactly as it was hashed (review chg7b).

The adapter hashed the file, then parsed it through its ``/proc/self/fd`` path to the file's current end: bytes
an ERP appended after the hash (half a row, "1003;DHL;JJD0003") were parsed and sent while the file was recorded
as the version hashed, and the next poll read the finished row too, so Karla kept a bogus extra parcel (JJD0003
beside JJD0003333333). An SFTP file was already parsed from the spool it hashed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from adapters.base import AdapterContext, Page
from adapters.csv import CsvAdapter, CsvConfig
from adapters.csv.files import Hashed, spooled
from adapters.csv.local import LocalFolder

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
FIRST = b"order_number;carrier;tracking_number\n1001;DHL;JJD0001\n1002;DHL;JJD0002\n"


class _AppendAfterHash(LocalFolder):
    """The ERP's next write lands between the hash and the parse: ``more`` is appended to the file then."""

    def __init__(self, root: Path, more: bytes) -> None:
        super().__init__(root)
        self.more = more

    @contextmanager
    def pinned(self, name: str, hashed: os.stat_result, size: int) -> Iterator[Hashed | None]:
        with open(self.root / name, "ab") as f:
            f.write(self.more)
        with super().pinned(name, hashed, size) as local:
            yield local


def _read(folder: Path, files: LocalFolder) -> list[Page]:
    context = AdapterContext(source="t", clock=lambda: NOW, log=logging.getLogger("hashed-bytes"))
    config = CsvConfig(url=f"file://{folder}", settle_seconds=0)
    return list(CsvAdapter("t", config, context, files=files).read("fulfillments", None))


def test_bytes_appended_after_the_hash_are_not_parsed_now(tmp_path: Path) -> None:
    (tmp_path / "fulfillments_1.csv").write_bytes(FIRST)
    pages = _read(tmp_path, _AppendAfterHash(tmp_path, b"1003;DHL;JJD0003"))
    numbers = [t.tracking_number for p in pages for r in p.records for t in r.trackings]
    assert numbers == ["JJD0001", "JJD0002"]  # before: JJD0003 too, half of a row still being written
    (mark,) = [m for p in pages for m in p.done_files]
    assert (mark.size, mark.sha256) == (len(FIRST), hashlib.sha256(FIRST).hexdigest())


def test_the_finished_row_is_read_with_the_next_version(tmp_path: Path) -> None:
    (tmp_path / "fulfillments_1.csv").write_bytes(FIRST)
    _read(tmp_path, _AppendAfterHash(tmp_path, b"1003;DHL;JJD0003"))
    with open(tmp_path / "fulfillments_1.csv", "ab") as f:
        f.write(b"333333\n")
    pages = _read(tmp_path, LocalFolder(tmp_path))
    numbers = [t.tracking_number for p in pages for r in p.records for t in r.trackings]
    assert numbers == ["JJD0001", "JJD0002", "JJD0003333333"]


def test_both_readers_of_one_file_keep_their_own_places_and_stop_at_the_hashed_size(tmp_path: Path) -> None:
    """The adapter reads a file twice at once (its order keys, then its rows): one descriptor, two positions."""
    (tmp_path / "fulfillments_1.csv").write_bytes(FIRST)
    files = _AppendAfterHash(tmp_path, b"1003;DHL;JJD0003")
    [remote] = files.list()
    with spooled(files, remote, logging.getLogger("hashed-bytes")) as (local, sha256):
        assert local is not None and local.size == len(FIRST)
        with local.open() as a, local.open() as b:
            assert a.read(10) == FIRST[:10] and b.read() == FIRST and a.read() == FIRST[10:] and a.read() == b""
