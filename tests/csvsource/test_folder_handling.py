"""What happens to files in a local folder: when they are read (settle time), where a file with dead
letters goes so ``dlq retry`` can still read it, and a file that vanishes between listing and reading."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.base import AdapterContext, Page
from adapters.csv import CsvAdapter, CsvConfig
from connector.app import Connector, ExitCode
from connector.settings import load_settings
from tests.conftest import SLUG, write_config, write_orders
from tests.integration.test_dlq import letters, retry

HEADER = "order_number,shipping_zip_code,shipping_name,sku,quantity,price"
MODIFIED = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
LOG = "folder-handling"


def _adapter(folder: Path, now: datetime, **config: object) -> CsvAdapter:
    context = AdapterContext(source="t", clock=lambda: now, log=logging.getLogger(LOG))
    return CsvAdapter("t", CsvConfig(url=f"file://{folder}", **config), context)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    os.utime(path, (MODIFIED.timestamp(), MODIFIED.timestamp()))
    return path


def _keys(pages: list[Page]) -> list[str]:
    return [r.key for p in pages for r in p.records]


# -- settle time --------------------------------------------------------------------------------------

def test_by_default_a_file_is_read_only_after_a_minute_without_change(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The ERP paused mid-file: its last row is cut. Read now, it would be archived while still written."""
    _write(tmp_path / "orders_1.csv", f"{HEADER}\n1,10119,A,S,1,12.50\n2,10119,B,S,1,1")
    with caplog.at_level(logging.INFO, logger=LOG):
        assert list(_adapter(tmp_path, MODIFIED + timedelta(seconds=20), after_processing="archive").read("orders", None)) == []
    assert (tmp_path / "orders_1.csv").exists() and not (tmp_path / "archive").exists()
    assert "orders_1.csv: changed 20s ago; it is read once it has not changed for 60s (settle_seconds): by the first " \
           "sync or poll from 2026-11-23 12:01:00 UTC" in caplog.text
    facts = _adapter(tmp_path, MODIFIED + timedelta(seconds=20)).check()  # `check` says so too
    assert "1 of them changed within settle_seconds (60s): read from 12:01:00 UTC on" in facts, facts
    pages = list(_adapter(tmp_path, MODIFIED + timedelta(seconds=60), after_processing="archive").read("orders", None))
    assert _keys(pages) == ["1", "2"] and (tmp_path / "archive" / "orders_1.csv").exists()


def test_a_modification_time_ahead_of_the_clock_waits_from_that_time(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write(tmp_path / "orders_1.csv", f"{HEADER}\n1,10119,A,S,1,1\n")
    with caplog.at_level(logging.INFO, logger=LOG):
        assert list(_adapter(tmp_path, MODIFIED - timedelta(seconds=30)).read("orders", None)) == []
    assert "modification time is 30s ahead of this clock" in caplog.text and "from 2026-11-23 12:01:00 UTC" in caplog.text


def test_settle_defaults_to_a_minute_and_to_none_with_done_markers(tmp_path: Path) -> None:
    assert CsvConfig(url=str(tmp_path)).settle_seconds == 60
    assert CsvConfig(url=str(tmp_path), done_suffix=".done").settle_seconds == 0  # the marker says it is complete
    assert CsvConfig(url=str(tmp_path), done_suffix=".done", settle_seconds=5).settle_seconds == 5
    _write(tmp_path / "orders_1.csv", f"{HEADER}\n1,10119,A,S,1,1\n")
    (tmp_path / "orders_1.csv.done").write_text("")
    assert _keys(list(_adapter(tmp_path, MODIFIED, done_suffix=".done").read("orders", None))) == ["1"]


# -- a file that vanishes ------------------------------------------------------------------------------

def test_a_file_that_vanishes_after_the_listing_does_not_fail_the_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for n in (1, 2):
        _write(tmp_path / f"orders_{n}.csv", f"{HEADER}\n{n},10119,A,S,1,1\n")
    adapter = _adapter(tmp_path, MODIFIED + timedelta(hours=1))
    listed = adapter.files.list

    def list_then_take_one() -> list:
        found = listed()
        (tmp_path / "orders_1.csv").unlink()
        return found

    adapter.files.list = list_then_take_one  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger=LOG):
        assert _keys(list(adapter.read("orders", None))) == ["2"]
    assert "orders_1.csv vanished before it could be read" in caplog.text


# -- dead letters and after_processing ----------------------------------------------------------------

def _cp1252_export(tmp_path: Path, sandbox: object, **source: object) -> tuple[Path, Path]:
    """A Windows ERP's export read as UTF-8: both orders become dead letters advising encoding = cp1252."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, source={"encoding": "utf-8", **source})  # type: ignore[attr-defined]
    path = write_orders(files, "orders_001.csv", [1, 2])
    path.write_bytes(path.read_text(encoding="utf-8").replace("Nováková", "Müller").encode("cp1252"))
    return config, path


def _sync(config: Path) -> list:
    connector = Connector(load_settings(config))
    try:
        assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
        return letters(connector)
    finally:
        connector.close()


def _fix_encoding_and_retry(config: Path, sandbox: object) -> None:
    config.write_text(config.read_text().replace('encoding = "utf-8"', 'encoding = "cp1252"'))
    code, said = retry(config)
    assert code == ExitCode.OK, said
    connector = Connector(load_settings(config))
    assert letters(connector) == [] and sandbox.orders(SLUG)["1"]["address"]["name"] == "Jana Müller"  # type: ignore[attr-defined]
    connector.close()


def test_with_archive_a_file_with_dead_letters_stays_so_its_letters_advice_works(tmp_path: Path, sandbox) -> None:
    config, path = _cp1252_export(tmp_path, sandbox, after_processing="archive")
    assert all('set encoding = "cp1252" for this source, then run dlq retry' in letter.reason for letter in _sync(config))
    assert path.exists() and not (path.parent / "archive").exists()  # the letter's advice needs the file here
    _fix_encoding_and_retry(config, sandbox)
    assert not path.exists() and (path.parent / "archive" / path.name).exists()  # read cleanly: archived now


def test_with_an_error_folder_the_letter_says_to_put_the_file_back(tmp_path: Path, sandbox) -> None:
    config, path = _cp1252_export(tmp_path, sandbox, after_processing="archive", error_folder="error")
    for letter in _sync(config):
        assert "then run dlq retry)" in letter.reason and letter.reason.endswith(
            "; its file is moved to the error folder 'error': move it back into the source folder before dlq retry")
    moved = path.parent / "error" / path.name
    assert moved.exists() and not path.exists()
    moved.rename(path)  # as the letter says
    _fix_encoding_and_retry(config, sandbox)
    assert (path.parent / "archive" / path.name).exists()


def test_dlq_retry_reads_a_file_put_back_fixed_at_once(tmp_path: Path, sandbox) -> None:
    # The README's steps with the default settle wait: the file edited and moved back has a fresh mtime, and
    # the re-read skipped it as still settling, then reported its file as gone.
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, source={"settle_seconds": 60, "after_processing": "archive",
                                                          "error_folder": "error"})
    path = write_orders(files, "orders_001.csv", [1, 2], zip_code="")  # no zip code: both are letters
    old = datetime.now(timezone.utc).timestamp() - 3600
    os.utime(path, (old, old))  # written an hour ago: settled
    assert len(_sync(config)) == 2
    moved = files / "error" / path.name
    moved.write_text(moved.read_text().replace(",,Berlin,DE,", ",10119,Berlin,DE,"))  # fixed by hand: a fresh mtime
    moved.rename(path)
    code, said = retry(config)
    assert code == ExitCode.OK and "gone" not in said, said
    assert set(sandbox.orders(SLUG)) == {"1", "2"}


def test_a_relative_folder_that_is_not_there_says_where_it_was_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    adapter = CsvAdapter("w", CsvConfig(url="exports"), AdapterContext(source="w"))
    with pytest.raises(ConfigError, match=rf"read from the current folder: {tmp_path}/exports; use an absolute path"):
        adapter.check()


def test_check_warns_about_file_names_with_day_first_dates(tmp_path: Path) -> None:
    """Name order is taken as time order: orders_05.12.2026.csv sorts before orders_20.11.2026.csv, and a full
    sync would then send the November version of an order over the December one (found by review)."""
    for name in ("orders_20.11.2026.csv", "orders_05.12.2026.csv", "orders_2026-12-06.csv"):
        _write(tmp_path / name, f"{HEADER}\n1,10119,A,S,1,12.50\n")
    (warning,) = [f for f in _adapter(tmp_path, MODIFIED + timedelta(hours=1)).check() if f.startswith("warning:")]
    assert warning.startswith("warning: orders_05.12.2026.csv and 1 more: a date with the year last does not sort by time")
    (tmp_path / "orders_20.11.2026.csv").unlink()
    (tmp_path / "orders_05.12.2026.csv").unlink()
    assert not [f for f in _adapter(tmp_path, MODIFIED + timedelta(hours=1)).check() if f.startswith("warning:")]
