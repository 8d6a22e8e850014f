"""A re-read never sets Karla back: a CSV file's versions sort by its name (``Record.version``).

Found by review: a full sync, ``dlq retry`` and a touched file each re-read an older file as if current,
and its older versions reached Karla over newer ones, with no error and no letter.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from rich.console import Console

from connector.app import Connector, ExitCode
from connector.dlq import retry_dead_letters
from connector.sandbox import Faults
from connector.settings import load_settings
from state import DeadLetters, Files
from tests.conftest import SLUG, write_config, write_orders


def _letters(connector: Connector) -> list:
    with connector.db.read() as conn:
        return DeadLetters(conn).list()


def _zip(sandbox, key: str = "1") -> str:
    return sandbox.orders(SLUG)[key]["address"]["zip_code"]


def _with_bad_row(files: Path, name: str, zip_code: str) -> Path:
    """Order 1 fine, order 3 with a date no one can read: a dead letter, and the file stays in place."""
    path = write_orders(files, name, [1, 3], zip_code=zip_code)
    path.write_text(path.read_text().replace("3,#3,2026-11-20T09:15:00+01:00", "3,#3,yesterday"))
    return path


def test_dlq_retry_reads_a_letters_file_again_without_sending_its_older_orders(tmp_path: Path, sandbox) -> None:
    files, config = tmp_path / "files", write_config(tmp_path, sandbox.url)
    path = _with_bad_row(files, "orders_001.csv", "10115")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    write_orders(files, "orders_002.csv", [1], zip_code="20095")  # a later export changes order 1
    assert connector.sync().exit_code == ExitCode.OK and _zip(sandbox) == "20095"
    (letter,) = _letters(connector)
    connector.close()
    path.write_text(path.read_text().replace("3,#3,yesterday", "3,#3,2026-11-20T09:15:00+01:00"))  # fixed
    code = retry_dead_letters(load_settings(config), [letter.id], Console(file=io.StringIO()))
    assert code == ExitCode.OK and _zip(sandbox) == "20095" and _zip(sandbox, "3") == "10115"


def test_a_full_sync_skips_a_file_left_in_place_whose_orders_changed_since(tmp_path: Path, sandbox) -> None:
    # With archive, a file with a letter stays while the newer files are archived: the nightly full sync
    # saw only the old file, held its versions, and let them go once it finished.
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive", "archive_folder": "archive"})
    _with_bad_row(files, "orders_001.csv", "10115")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    write_orders(files, "orders_002.csv", [1], zip_code="20095")
    assert connector.sync().exit_code == ExitCode.OK and not (files / "orders_002.csv").exists()
    report = connector.sync(full=True)
    assert report.sources["warehouse"].older == 1 and _zip(sandbox) == "20095"


def test_a_cut_short_full_sync_does_not_replace_a_newer_waiting_version(tmp_path: Path, sandbox) -> None:
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 1})
    write_orders(files, "orders_000.csv", [1], zip_code="10115")
    write_orders(files, "orders_001.csv", [1], zip_code="20095")
    connector = Connector(load_settings(config))
    sandbox.faults = Faults(down=True)
    assert connector.sync().exit_code == ExitCode.UNFINISHED  # order 1 (20095) waits: Karla is down
    sandbox.faults = Faults()
    connector.sync_one(connector.sources["warehouse"], full=True, stop=lambda: True)  # only orders_000.csv
    assert connector.sync().exit_code == ExitCode.OK and _zip(sandbox) == "20095"


def test_the_same_content_with_a_new_mtime_is_not_read_again(tmp_path: Path, sandbox) -> None:
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "keep"})
    path = write_orders(files, "orders_001.csv", [1], zip_code="10115")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.OK
    write_orders(files, "orders_002.csv", [1], zip_code="20095")
    assert connector.sync().exit_code == ExitCode.OK and _zip(sandbox) == "20095"
    touched = path.stat().st_mtime - 120
    os.utime(path, (touched, touched))  # rsync without -t, a restore from backup, an unchanged save
    report = connector.sync()
    assert report.sources["warehouse"].read == 0 and _zip(sandbox) == "20095"
    with connector.db.read() as conn:  # its new fingerprint is remembered: the next poll does not open it
        assert Files(conn).was_read("warehouse", "orders_001.csv", path.stat().st_size, path.stat().st_mtime)
