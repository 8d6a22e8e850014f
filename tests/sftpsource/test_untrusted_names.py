"""An SFTP folder written by another account, against the loopback server: a file swapped for a symbolic link
after the listing is not read through it, a linked export is said to be skipped (once, and in ``check``), and a
legal name with a backslash is read like any other."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from adapters.base import AdapterContext, Page
from adapters.csv import CsvAdapter, CsvConfig
from adapters.csv.files import Unreadable
from tests.sftpsource.server import SftpServer
from tests.sftpsource.test_sftp import HEADER, folder

LOG = "sftp-untrusted"
SECRET = f"{HEADER}\nB-1,10119,victim@example.com,S,1,1\n"


class _SwapAtOpen(SftpServer):
    """The upload account's move between the connector's listing and its open: the file becomes a link."""

    swap: tuple[Path, Path] | None = None

    def _before_open(self, path: bytes) -> None:
        if self.swap is not None:
            name, target = self.swap
            name.unlink()
            name.symlink_to(target)
            self.swap = None


def _adapter(server: SftpServer, tmp_path: Path, **config: object) -> CsvAdapter:
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    cfg = CsvConfig(url=f"sftp://{server.user}@127.0.0.1:{server.port}/exports", settle_seconds=0,
                    sftp={"password": server.password, "known_hosts": str(known)}, **config)
    return CsvAdapter("w", cfg, AdapterContext(source="w", log=logging.getLogger(LOG)))


def _records(pages: list[Page]) -> list[str]:
    return [r.key for p in pages for r in p.records]


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.csv"
    secret.write_text(SECRET)
    os.chmod(secret, 0o600)
    return secret


def test_a_file_swapped_for_a_link_after_listing_is_not_read_through_it(sftp_root: Path, tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    server = _SwapAtOpen(sftp_root).start()
    try:
        exported = sftp_root / "exports" / "orders_2.csv"
        exported.write_text(f"{HEADER}\n1,10119,A,S,1,1\n")
        sftp = folder(server, tmp_path)
        [listed] = sftp.list()
        server.swap = (exported, _secret(tmp_path))
        with pytest.raises(Unreadable, match="replaced by a symbolic link"), sftp.open(listed.name) as f:
            f.read()
        sftp.close()
        server.swap = (exported, tmp_path / "secret.csv")
        exported.unlink()
        exported.write_text(f"{HEADER}\n1,10119,A,S,1,1\n")
        with caplog.at_level(logging.INFO, logger=LOG):
            pages = list(_adapter(server, tmp_path, after_processing="archive").read("orders", None))
        assert "victim@example.com" not in repr(pages) and _records(pages) == []
        assert "tried again on the next poll" in caplog.text
        assert not (sftp_root / "exports" / "archive").exists()
    finally:
        server.stop()


def test_a_linked_export_is_said_once_and_in_check(server: SftpServer, sftp_root: Path, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    (sftp_root / "exports" / "orders_7.csv").symlink_to(sftp_root / "orders_7.csv")
    (sftp_root / "orders_7.csv").write_text(f"{HEADER}\n7,10119,A,S,1,1\n")
    (sftp_root / "exports" / "old").symlink_to(sftp_root)  # a link to a folder is no export: not said
    adapter = _adapter(server, tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOG):
        assert _records(list(adapter.read("orders", None))) == []
        assert _records(list(adapter.read("orders", None))) == []
    adapter.close()
    said = [r.getMessage() for r in caplog.records if "symbolic link" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith("folder /exports: orders_7.csv is a symbolic link; links are not "
                                               "followed: copy or move the file itself into the folder instead"), said
    checker = _adapter(server, tmp_path)
    facts = checker.check()
    checker.close()
    assert "warning: orders_7.csv is a symbolic link; links are not followed: copy or move the file itself into the " \
           "folder instead" in facts, facts
    assert not any("old is" in f for f in facts), facts


def test_a_name_with_a_backslash_is_read_like_any_other(server: SftpServer, sftp_root: Path, tmp_path: Path) -> None:
    (sftp_root / "exports" / "orders_2026\\11.csv").write_text(f"{HEADER}\n1,10119,A,S,1,1\n")
    adapter = _adapter(server, tmp_path, after_processing="archive")
    assert _records(list(adapter.read("orders", None))) == ["1"]
    adapter.close()
    assert (sftp_root / "exports" / "archive" / "orders_2026\\11.csv").exists()
