"""A local folder written by another account (the ERP's upload user): nothing in it is trusted to stay as listed.
A file swapped for a symbolic link is not read through it, an archive folder that is a link is not moved into,
a link is said to be skipped, and a legal name with a backslash is read like any other."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adapters.base import AdapterContext, Page
from adapters.csv import CsvAdapter, CsvConfig
from adapters.csv.files import RemoteFile, Unreadable, spooled
from adapters.csv.local import LocalFolder

HEADER = "order_number,shipping_zip_code,shipping_name,sku,quantity,price"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
LOG = "untrusted-folder"
SECRET = "order_number,shipping_zip_code,shipping_name,sku,quantity,price\nB-1,10119,victim@example.com,S,1,1\n"


def _adapter(folder: Path, files: LocalFolder | None = None, **config: object) -> CsvAdapter:
    context = AdapterContext(source="t", clock=lambda: NOW, log=logging.getLogger(LOG))
    return CsvAdapter("t", CsvConfig(url=f"file://{folder}", settle_seconds=0, **config), context, files=files)


def _secret(tmp_path: Path) -> Path:
    """Another source's export, readable only by the service's own user."""
    secret = tmp_path / "secret.csv"
    secret.write_text(SECRET)
    os.chmod(secret, 0o600)
    return secret


def _records(pages: list[Page]) -> list[str]:
    return [r.key for p in pages for r in p.records]


class _SwapAfterListing(LocalFolder):
    """The upload account's move: right after the listing, the listed file becomes a link to ``target``."""

    def __init__(self, root: Path, name: str, target: Path) -> None:
        super().__init__(root)
        self.name, self.target = name, target

    def list(self) -> list[RemoteFile]:
        listed = super().list()
        (self.root / self.name).unlink()
        (self.root / self.name).symlink_to(self.target)
        return listed


def test_a_file_swapped_for_a_link_after_listing_is_not_opened_through_it(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders_2.csv").write_text("order_number\n1\n")
    src = LocalFolder(folder)
    [listed] = src.list()
    (folder / "orders_2.csv").unlink()
    (folder / "orders_2.csv").symlink_to(_secret(tmp_path))
    with pytest.raises(Unreadable, match=r"orders_2\.csv was replaced by a symbolic link"):
        src.open(listed.name)


def test_a_sync_reads_nothing_of_a_file_swapped_for_a_link(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders_2.csv").write_text(f"{HEADER}\n1,10119,A,S,1,1\n")
    files = _SwapAfterListing(folder, "orders_2.csv", _secret(tmp_path))
    with caplog.at_level(logging.INFO, logger=LOG):
        pages = list(_adapter(folder, files, after_processing="archive").read("orders", None))
    assert "victim@example.com" not in repr(pages) and _records(pages) == []
    assert "orders_2.csv was replaced by a symbolic link" in caplog.text and "tried again on the next poll" in caplog.text
    assert (folder / "orders_2.csv").is_symlink() and (tmp_path / "secret.csv").read_text() == SECRET  # nothing moved


def test_what_is_parsed_is_the_file_hashed_even_if_its_name_is_swapped_meanwhile(tmp_path: Path) -> None:
    """The adapter opens the spooled file again to parse it: that must not follow the name."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders_2.csv").write_text("order_number\n1\n")
    files = LocalFolder(folder)
    [remote] = files.list()
    with spooled(files, remote, logging.getLogger(LOG)) as (local, sha256):
        (folder / "orders_2.csv").unlink()
        (folder / "orders_2.csv").symlink_to(_secret(tmp_path))
        assert local is not None and sha256
        with local.open() as f:
            assert f.read() == b"order_number\n1\n"


def test_an_archive_folder_that_is_a_link_out_of_the_folder_is_not_moved_into(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "archive").symlink_to(elsewhere)
    (folder / "orders_1.csv").write_text(f"{HEADER}\n1,10119,A,S,1,1\n")
    with caplog.at_level(logging.INFO, logger=LOG):
        pages = list(_adapter(folder, after_processing="archive").read("orders", None))
    assert _records(pages) == ["1"]  # read and queued; only the move is refused
    assert list(elsewhere.iterdir()) == [] and (folder / "orders_1.csv").exists()
    assert "could not be moved" in caplog.text and "'archive' is a symbolic link" in caplog.text
    facts = _adapter(folder, after_processing="archive").check()
    assert any(f.startswith("warning: archive_folder: ") and "is a symbolic link" in f for f in facts), facts


def test_a_nested_error_folder_below_a_link_is_not_made_outside(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "errors").symlink_to(elsewhere)
    (folder / "orders_1.csv").write_text("x\n")
    with pytest.raises(Exception, match="symbolic link"):
        LocalFolder(folder).move("orders_1.csv", "errors/2026")
    assert list(elsewhere.iterdir()) == [] and (folder / "orders_1.csv").exists()


def test_a_real_archive_folder_still_takes_files_without_overwriting(tmp_path: Path) -> None:
    (tmp_path / "orders_1.csv").write_text("new\n")
    (tmp_path / "archive" / "2026").mkdir(parents=True)
    (tmp_path / "archive" / "2026" / "orders_1.csv").write_text("old\n")
    moved = LocalFolder(tmp_path).move("orders_1.csv", "archive/2026")
    assert moved.startswith("archive/2026/orders_1.") and moved != "archive/2026/orders_1.csv"
    assert (tmp_path / moved).read_text() == "new\n" and (tmp_path / "archive/2026/orders_1.csv").read_text() == "old\n"


def test_a_linked_export_is_said_once_and_in_check(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    export = tmp_path / "exports" / "orders_7.csv"
    export.parent.mkdir()
    export.write_text(f"{HEADER}\n7,10119,A,S,1,1\n")
    (folder / "orders_7.csv").symlink_to(export)
    (folder / "old").symlink_to(tmp_path / "exports")  # a link to a folder is no export: not said
    with caplog.at_level(logging.WARNING, logger=LOG):
        adapter = _adapter(folder)
        assert _records(list(adapter.read("orders", None))) == []
        assert _records(list(adapter.read("orders", None))) == []
    said = [r.getMessage() for r in caplog.records if "symbolic link" in r.getMessage()]
    assert said == [f"folder {folder}: orders_7.csv is a symbolic link; links are not followed: copy or move the file "
                    "itself into the folder instead"]
    facts = _adapter(folder).check()
    assert "warning: orders_7.csv is a symbolic link; links are not followed: copy or move the file itself into the " \
           "folder instead" in facts, facts
    assert not any("old is" in f for f in facts), facts


def test_a_name_with_a_backslash_is_read_like_any_other(tmp_path: Path) -> None:
    (tmp_path / "orders_2026\\11.csv").write_text(f"{HEADER}\n1,10119,A,S,1,1\n")
    (tmp_path / "orders_2026-12.csv").write_text(f"{HEADER}\n2,10119,B,S,1,1\n")
    pages = list(_adapter(tmp_path, after_processing="archive").read("orders", None))
    assert sorted(_records(pages)) == ["1", "2"]
    assert (tmp_path / "archive" / "orders_2026\\11.csv").exists()
    assert "2 file(s) match 'orders*.csv' (orders)" in _adapter(tmp_path / "archive").check()
