"""A bad row of an order that a later file already brought is no dead letter (found by review fuzz5-1): with
``archive`` or ``delete``, the file kept in place for its letter was read again by every full sync, after the
newer file had gone, and its letter came back ("order 1 not sent: fix the row"), exit 1, though Karla had the
order's newest version. A bad row in a newer file than Karla's still becomes a letter."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from adapters.base import Page, Record, Rejected
from connector.engine import SourceRuntime
from connector.karla.models import OrderPlacement
from connector.pages import commit_page
from state.db import open_state
from tests.conftest import SLUG, cli, write_config, write_orders
from tests.sdk.test_contract_kit import KitConfig

MODES = {"archive": {"after_processing": "archive", "archive_folder": "archive"}, "delete": {"after_processing": "delete"},
         "keep": {"after_processing": "keep"}}


def _letters(config: Path) -> list[dict]:
    listed = cli(config, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _bad_date(path: Path, number: int) -> Path:
    """Order ``number``'s rows with an order_placed_at that is no date."""
    lines = path.read_text().splitlines()
    bad = [line.replace("2026-11-20T09:15:00+01:00", "not-a-date") if line.startswith(f"{number},") else line for line in lines]
    path.write_text("\n".join(bad) + "\n")
    return path


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_kept_files_bad_row_fixed_by_a_later_file_stays_no_letter_through_full_syncs(tmp_path: Path, sandbox, mode: str) -> None:
    config, files = write_config(tmp_path, sandbox.url, source=MODES[mode]), tmp_path / "files"
    _bad_date(write_orders(files, "orders_001.csv", [1, 2]), 1)
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    assert (letter["order"], letter["location"].split(":")[0]) == ("1", "orders_001.csv")
    old = sqlite3.connect(tmp_path / "state.db").execute("SELECT * FROM dead_letter").fetchone()
    write_orders(files, "orders_002.csv", [1], zip_code="20095")  # the fix, in the next export
    assert cli(config, "sync").returncode == 0
    assert _letters(config) == []
    assert (files / "orders_001.csv").exists(), "a file with letters stays in place (README, After reading)"
    for args in (("sync", "--full"), ("sync",), ("sync", "--full")):
        run = cli(config, *args)
        assert run.returncode == 0, (args, run.stdout, run.stderr, _letters(config))
        assert _letters(config) == []
    assert "superseded by orders_002.csv" in run.stderr and "nothing to fix" in run.stderr
    assert sandbox.orders(SLUG)["1"]["address"]["zip_code"] == "20095"
    # a letter an earlier build brought back this way is cleared by the next full sync
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute(f"INSERT INTO dead_letter VALUES ({','.join('?' * len(old))})", old)
    assert len(_letters(config)) == 1
    run = cli(config, "sync", "--full")
    assert run.returncode == 0 and _letters(config) == [], run.stderr
    assert "1 earlier dead letter(s) of them cleared" in run.stderr


@pytest.mark.parametrize("mode", ["archive", "keep"])
def test_a_bad_row_in_a_newer_file_than_karlas_is_still_a_letter(tmp_path: Path, sandbox, mode: str) -> None:
    config, files = write_config(tmp_path, sandbox.url, source=MODES[mode]), tmp_path / "files"
    write_orders(files, "orders_001.csv", [1])
    assert cli(config, "sync").returncode == 0
    _bad_date(write_orders(files, "orders_002.csv", [1, 2], zip_code="20095"), 1)
    for args in (("sync",), ("sync", "--full")):
        run = cli(config, *args)
        assert run.returncode == 1, (args, run.stdout, run.stderr)
        (letter,) = _letters(config)
        assert (letter["order"], letter["location"].split(":")[0]) == ("1", "orders_002.csv")
        assert "fix the row and upload the file again" in letter["reason"]
    assert sandbox.orders(SLUG)["1"]["address"]["zip_code"] == "10119"  # Karla still has the older file's


def _order(key: str) -> OrderPlacement:
    return OrderPlacement.model_validate({"order_number": key, "address": {"zip_code": "10119"}})


def test_versions_that_name_no_file_read_never_make_a_letter_obsolete(tmp_path: Path) -> None:
    """An adapter whose versions are not its files' names (here ``v9``, a counter): a rejection's location
    sorting before it says nothing about which is newer, and its letter stands."""
    db = open_state(tmp_path / "s.db")
    rt = SourceRuntime("erp", object, KitConfig(), "shop")  # type: ignore[arg-type]  # commit_page never builds it
    commit_page(db, rt, "orders", Page(records=[Record(key="1", order=_order("1"), location="memory:1", version="v9")]),
                full=False, now=1.0)
    counts = commit_page(db, rt, "orders", Page(rejected=[Rejected("batch-a:3", "qty -1", key="1")]), full=False, now=2.0)
    assert (counts.new_letters, counts.rejected) == (1, 1)
