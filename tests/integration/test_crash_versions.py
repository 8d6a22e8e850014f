"""Killed at a chosen moment (a real subprocess that SIGKILLs itself there), then run again: Karla must not
end with an older version of an order. Found by a crash-fuzz run (426 kills) over the versions change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ORDER_HEADER, SLUG, cli, order_rows, write_config

# Runs the CLI in a process that kills itself at ``where``: the re-read of `dlq retry`, as an answer arrives
# (before it is recorded), or once a drain's answers are recorded (before its last on_wire note is removed).
SELF_KILL = """
import os, signal, sys
from connector import app, sender
config, where, command = sys.argv[1], sys.argv[2], sys.argv[3:]
def die(*args, **kwargs): os.kill(os.getpid(), signal.SIGKILL)
if where == "reread":
    plain = app.Connector.sync_one
    app.Connector.sync_one = lambda self, *a, **k: die() if k.get("replay") is not None else plain(self, *a, **k)
elif where == "record":
    sender.Sender._record = die
elif where == "close":
    sender.Sender.close = die
from connector.cli import main
sys.argv = ["karla-connector", "--config", config, *command]
main()
"""


def _killed(tmp_path: Path, config: Path, where: str, *command: str) -> None:
    result = subprocess.run([sys.executable, "-c", SELF_KILL, str(config), where, *command], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == -9, result.stderr


def _name(sandbox, key: str = "1") -> str:
    return "New" if "New" in json.dumps(sandbox.orders(SLUG)[key], ensure_ascii=False) else "Old"


def _two_exports(tmp_path: Path, sandbox, after: str = "keep", karla: dict | None = None) -> tuple[Path, Path]:
    """orders_0001.csv: order 1 'Old' and order 2 without a zip code (a dead letter); orders_0002.csv: order 1 'New'."""
    files = tmp_path / "files"
    files.mkdir()
    config = write_config(tmp_path, sandbox.url, files=files, source={"after_processing": after}, karla=karla)
    old = files / "orders_0001.csv"
    old.write_text("\n".join([ORDER_HEADER, *order_rows(1, name="Old"), *order_rows(2, zip_code="", name="Old")]) + "\n")
    assert cli(config, "sync").returncode == 1
    (files / "orders_0002.csv").write_text("\n".join([ORDER_HEADER, *order_rows(1, name="New")]) + "\n")
    return config, old


@pytest.mark.parametrize("after", ["keep", "archive"])
def test_an_older_export_fixed_in_place_does_not_set_karla_back(tmp_path: Path, sandbox, after: str) -> None:
    # No kill needed: the merchant fixes the bad row as its letter says; the file read again sent order 1's older version.
    config, old = _two_exports(tmp_path, sandbox, after)
    assert cli(config, "sync").returncode == 0
    old.write_text("\n".join([ORDER_HEADER, *order_rows(1, name="Old"), *order_rows(2, name="Old")]) + "\n")
    assert cli(config, "sync").returncode == 0
    assert _name(sandbox) == "New" and _name(sandbox, "2") == "Old"  # order 2, fixed, goes


@pytest.mark.parametrize("after", ["keep", "archive"])
def test_a_dlq_retry_killed_in_its_re_read_leaves_nothing_to_send_as_current(tmp_path: Path, sandbox, after: str) -> None:
    config, _ = _two_exports(tmp_path, sandbox, after)
    assert cli(config, "sync").returncode == 0
    _killed(tmp_path, config, "reread", "dlq", "retry", "--all")
    cli(config, "sync")
    assert _name(sandbox) == "New"


def test_the_note_of_a_recorded_answer_keeps_what_karla_acknowledged(tmp_path: Path, sandbox) -> None:
    config, _ = _two_exports(tmp_path, sandbox)
    _killed(tmp_path, config, "close", "sync")  # order 1 'New' stored and recorded; its note stays behind
    cli(config, "sync")
    sandbox.reset_log()
    cli(config, "sync", "--full")
    assert sum(r.items for r in sandbox.requests if r.method == "PUT") == 0  # nothing unchanged goes again
    cli(config, "dlq", "retry", "--all")  # re-reads orders_0001.csv for order 2's letter
    assert _name(sandbox) == "New"


def test_a_note_that_outlives_a_sync_does_not_erase_its_acknowledgement(tmp_path: Path, sandbox) -> None:
    # The sync after the kill delivered through its delivery process, which does not look at notes: the note
    # stayed, and a later drain honoured it over the acknowledgement that sync had recorded.
    config, _ = _two_exports(tmp_path, sandbox, karla={"deliver_while_reading_after": 5})
    _killed(tmp_path, config, "record", "sync")  # order 1 'New' reached Karla; the answer was not recorded
    more = [row for n in range(100, 130) for row in order_rows(n)]
    (tmp_path / "files" / "orders_0003.csv").write_text("\n".join([ORDER_HEADER, *more]) + "\n")
    cli(config, "sync")
    cli(config, "sync", "--full")
    cli(config, "dlq", "retry", "--all")
    assert _name(sandbox) == "New"
