"""A re-read never sets Karla back: a CSV file's versions sort by its name (``Record.version``).

Found by review: a full sync, ``dlq retry`` and a touched file each re-read an older file as if current,
and its older versions reached Karla over newer ones, with no error and no letter.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
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
    assert report.sources["warehouse"].superseded == 1 and _zip(sandbox) == "20095"


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


# -- after review of the above: letters keep their versions, a replay sends only its letters' orders ----------
def _bad(path: Path, n: int) -> None:
    path.write_text(path.read_text().replace(f"{n},#{n},2026-11-20T09:15:00+01:00", f"{n},#{n},yesterday"))


def _fix(path: Path, n: int) -> None:
    path.write_text(path.read_text().replace(f"{n},#{n},yesterday", f"{n},#{n},2026-11-20T09:15:00+01:00"))


def _as_before_versions(tmp_path: Path) -> None:
    """What migration 9 leaves for parts delivered before it: no version."""
    con = sqlite3.connect(tmp_path / "state.db")
    con.execute("UPDATE delivered SET version = NULL")
    con.commit()
    con.close()


def _retry(config: Path, ids: list[int] | None = None) -> int:
    return retry_dead_letters(load_settings(config), ids, Console(file=io.StringIO()))


def test_dlq_retry_sends_the_fixed_order_though_karlas_version_is_unknown(tmp_path: Path, sandbox) -> None:
    # Delivered before versions (or by a plugin without them): the re-read held the fixed order until a full
    # sync, which the default configuration never runs.
    files, config = tmp_path / "files", write_config(tmp_path, sandbox.url)
    write_orders(files, "orders_001.csv", [3], zip_code="11111")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.OK
    path = write_orders(files, "orders_002.csv", [3], zip_code="22222")
    _bad(path, 3)
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (letter,) = _letters(connector)
    connector.close()
    _as_before_versions(tmp_path)
    _fix(path, 3)
    assert _retry(config, [letter.id]) == ExitCode.OK and _zip(sandbox, "3") == "22222"


def test_dlq_retry_leaves_the_files_other_orders_alone_when_versions_are_unknown(tmp_path: Path, sandbox) -> None:
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive", "archive_folder": "archive"})
    path = _with_bad_row(files, "orders_001.csv", "10115")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    write_orders(files, "orders_002.csv", [1], zip_code="20095")
    assert connector.sync().exit_code == ExitCode.OK
    (letter,) = _letters(connector)
    connector.close()
    _as_before_versions(tmp_path)
    _fix(path, 3)
    assert _retry(config, [letter.id]) == ExitCode.OK and _zip(sandbox, "3") == "10115"
    connector = Connector(load_settings(config))
    assert connector.status()["held"] == 0 and connector.sync(full=True).exit_code == ExitCode.OK
    assert _zip(sandbox) == "20095"


def test_an_unversioned_plugins_fixed_order_goes_on_dlq_retry(tmp_path: Path, sandbox) -> None:
    path = tmp_path / "orders.jsonl"
    first = {"number": "A", "updated": "2026-11-20T10:00:00Z", "zip": "11111"}
    path.write_text(json.dumps(first) + "\n")
    config = write_config(tmp_path, sandbox.url)
    config.write_text(config.read_text().split("[sources.warehouse]")[0] + f'[sources.toy]\ntype = "jsonl"\npath = "{path}"\n')
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.OK
    path.write_text(json.dumps(first) + "\n" + json.dumps({**first, "updated": "yesterday", "zip": "22222"}) + "\n")
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    connector.close()
    path.write_text(json.dumps(first) + "\n" + json.dumps({**first, "updated": "2026-11-21T10:00:00Z", "zip": "22222"}) + "\n")
    assert _retry(config) == ExitCode.OK and _zip(sandbox, "A") == "22222"


def test_a_file_whose_content_goes_back_to_an_earlier_version_is_read(tmp_path: Path, sandbox) -> None:
    files, config = tmp_path / "files", write_config(tmp_path, sandbox.url)
    connector = Connector(load_settings(config))
    stamp = 1_790_000_000.0
    for zip_code in ("10115", "20095", "10115"):  # the ERP corrects it back
        write_orders(files, "orders.csv", [1], zip_code=zip_code)
        stamp += 60
        os.utime(files / "orders.csv", (stamp, stamp))
        assert connector.sync().exit_code == ExitCode.OK and _zip(sandbox) == zip_code


def test_a_retried_karla_letter_keeps_its_version(tmp_path: Path, sandbox) -> None:
    # Queued again without its version, the letter's newest order lost to an older file's: replayed by
    # `dlq retry --all` over it, or by the nightly full sync once delivered.
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive", "archive_folder": "archive"})
    path = _with_bad_row(files, "orders_001.csv", "10115")  # stays in place for its letter
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    sandbox.refuse_order("1", 422, "invalid_payload")
    write_orders(files, "orders_002.csv", [1], zip_code="20095")  # order 1's newer version, refused by Karla
    connector.sync()
    sandbox.heal()
    assert {letter.stage for letter in _letters(connector)} == {"source", "karla"}
    connector.close()
    _fix(path, 3)
    assert _retry(config) == ExitCode.OK and _zip(sandbox) == "20095"  # dlq retry --all
    connector = Connector(load_settings(config))
    assert connector.sync(full=True).exit_code == ExitCode.OK and _zip(sandbox) == "20095"


def test_a_cut_short_full_sync_does_not_send_an_older_version_over_a_refused_newer_one(tmp_path: Path, sandbox) -> None:
    # Karla never had order 1 and refused its newest version: the full sync's older one went, Karla took it,
    # and that cleared the newer one's letter (found by review).
    files, config = tmp_path / "files", write_config(tmp_path, sandbox.url)
    write_orders(files, "orders_000.csv", [1], zip_code="10115")
    write_orders(files, "orders_001.csv", [1], zip_code="20095")
    connector = Connector(load_settings(config))
    sandbox.refuse_order("1", 422, "invalid_payload")
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS  # the newest version (20095) refused: a letter
    sandbox.heal()
    counts = connector.sync_one(connector.sources["warehouse"], full=True, stop=lambda: True)  # orders_000.csv only
    assert counts.superseded == 1 and connector.sync().exit_code == ExitCode.OK
    assert "1" not in sandbox.orders(SLUG) and len(_letters(connector)) == 1


# -- after a second review: what the retry reads besides its letters' files, and when its read fails --------
def test_dlq_retry_sends_a_new_file_that_arrived_meanwhile_as_a_plain_read(tmp_path: Path, sandbox) -> None:
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive", "archive_folder": "archive"})
    path = _with_bad_row(files, "orders_001.csv", "10115")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (letter,) = _letters(connector)
    connector.close()
    write_orders(files, "orders_002.csv", [1, 5], zip_code="20095")  # before the retry; not polled yet
    _fix(path, 3)
    assert _retry(config, [letter.id]) == ExitCode.OK
    assert (_zip(sandbox), _zip(sandbox, "3"), _zip(sandbox, "5")) == ("20095", "10115", "20095")


def test_a_retry_whose_read_fails_leaves_the_file_read(tmp_path: Path, sandbox) -> None:
    # The file was forgotten before the read that failed: the next poll read it as current data.
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive", "archive_folder": "archive"})
    _with_bad_row(files, "orders_001.csv", "10115")
    connector = Connector(load_settings(config))
    connector.sync()
    write_orders(files, "orders_002.csv", [1], zip_code="20095")
    assert connector.sync().exit_code == ExitCode.OK and _zip(sandbox) == "20095"
    connector.close()
    files.rename(tmp_path / "away")  # the share is gone while the retry reads
    assert _retry(config) == ExitCode.UNFINISHED
    (tmp_path / "away").rename(files)
    connector = Connector(load_settings(config))
    assert connector.sync().sources["warehouse"].read == 0 and _zip(sandbox) == "20095"
    assert len(_letters(connector)) == 1


def test_dlq_retry_all_sends_a_fixed_row_over_an_older_karla_letter_without_versions(tmp_path: Path, sandbox) -> None:
    # A Karla letter from before versions, queued first, made the fixed newer row of the same order look older.
    files, config = tmp_path / "files", write_config(tmp_path, sandbox.url)
    write_orders(files, "orders_001.csv", [1], zip_code="11111")
    connector = Connector(load_settings(config))
    sandbox.refuse_order("1", 422, "invalid_payload")
    connector.sync()
    sandbox.heal()
    path = write_orders(files, "orders_002.csv", [1], zip_code="22222")
    _bad(path, 1)
    connector.sync()
    assert {letter.stage for letter in _letters(connector)} == {"karla", "source"}
    connector.close()
    con = sqlite3.connect(tmp_path / "state.db")
    con.execute("UPDATE dead_letter SET versions = NULL")
    con.commit()
    con.close()
    _fix(path, 1)
    assert _retry(config) == ExitCode.OK and _zip(sandbox) == "22222"
    assert _letters(Connector(load_settings(config))) == []


def test_a_letter_without_an_order_number_clears_once_its_file_reads_cleanly(tmp_path: Path, sandbox) -> None:
    files, config = tmp_path / "files", write_config(tmp_path, sandbox.url)
    path = write_orders(files, "orders_001.csv", [1, 2], zip_code="11111")
    rows = path.read_text().splitlines()
    path.write_text("\n".join([*rows, rows[1].replace("1,#1,", ",#9,", 1)]) + "\n")  # a row without its number
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    write_orders(files, "orders_002.csv", [1], zip_code="22222")
    assert connector.sync().exit_code == ExitCode.OK
    connector.close()
    path.write_text("\n".join([*rows, rows[1].replace("1,#1,", "9,#9,", 1)]) + "\n")  # the number filled in
    assert _retry(config) == ExitCode.OK
    assert (_zip(sandbox), _zip(sandbox, "9")) == ("22222", "11111") and _letters(Connector(load_settings(config))) == []


def test_an_order_fixed_in_the_next_export_clears_the_earlier_files_letter(tmp_path: Path, sandbox) -> None:
    # The ERP's correction comes in the next export, not in the old file: the letter said "not sent" for
    # good, and dlq retry re-read the old row and refreshed it (found by a newcomer's walkthrough).
    files, config = tmp_path / "files", write_config(tmp_path, sandbox.url)
    _with_bad_row(files, "orders_2026-12-07T1400.csv", "10115")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    write_orders(files, "orders_2026-12-07T1500.csv", [3], zip_code="20095")
    assert connector.sync().exit_code == ExitCode.OK and _zip(sandbox, "3") == "20095"
    assert _letters(connector) == []
    _with_bad_row(files, "orders_2026-12-07T1600.csv", "40000")  # order 3 bad again, in a later export
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    write_orders(files, "orders_2026-12-07T1200.csv", [3], zip_code="50000")  # a late file sorting before: no say
    assert connector.sync().exit_code == ExitCode.OK
    (letter,) = _letters(connector)
    assert letter.location == "orders_2026-12-07T1600.csv:4"
