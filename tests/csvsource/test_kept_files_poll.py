"""With ``after_processing = "keep"`` every poll asks, per file in the folder, whether it was read before.
Asked of the state file one file at a time, that was a query per file per poll (a year of daily exports:
seconds per idle poll); it is one query per run now, with the same answers. Found by a long-run review."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from adapters.base import FileMark
from connector import engine
from connector.app import Connector
from connector.settings import load_settings
from state import Files
from tests.conftest import write_config, write_fulfillments, write_orders

KARLA = "http://127.0.0.1:9"  # never called: these polls only read


def _statements_of_a_poll(connector: Connector) -> int:
    count = 0

    def counted(*_args: Any) -> None:
        nonlocal count
        count += 1

    event.listen(connector.db.engine, "before_cursor_execute", counted)
    try:
        counts = connector.sync_one(connector.sources["warehouse"])
    finally:
        event.remove(connector.db.engine, "before_cursor_execute", counted)
    assert counts.read == 0  # every file kept and read before
    return count


def test_a_poll_over_3_and_over_40_kept_files_costs_the_same_statements(tmp_path: Path) -> None:
    costs = []
    for files in (3, 40):
        base = tmp_path / str(files)
        base.mkdir()
        config = write_config(base, KARLA)
        for n in range(files):
            write_orders(base / "files", f"orders_{n:03}.csv", [n + 1])
        connector = Connector(load_settings(config))
        assert connector.sync_one(connector.sources["warehouse"]).read == files
        costs.append(_statements_of_a_poll(connector))
        connector.close()
    assert costs[0] == costs[1], costs


def test_the_answers_are_the_state_files_also_for_files_marked_in_the_same_poll(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each answer is compared with the per-file query it replaces, asked at that moment: kept files, a file
    both globs match (marked read by the second stream; touched, its new mtime is marked by the first, so the
    second must hear it was read), a rewritten file and one touched with its content unchanged."""
    folder = tmp_path / "files"
    config = write_config(tmp_path, KARLA, files=folder, source={"orders_glob": "*.csv", "fulfillments_glob": "fulfillments*.csv"})
    asked: list[tuple[str, FileMark | None]] = []
    original = engine._WasRead.__call__

    def compared(self: engine._WasRead, path: str, size: int, mtime: float) -> FileMark | None:
        got = original(self, path, size, mtime)
        with self.db.read() as conn:
            row = Files(conn).was_read(self.source, path, size, mtime)
        assert got == (None if row is None else FileMark(path, size, mtime, *row)), path
        asked.append((path, got))
        return got

    monkeypatch.setattr(engine._WasRead, "__call__", compared)
    write_fulfillments(folder, "fulfillments_1.csv", ["1,TRK1,dhl,,2026-11-21T10:00:00+01:00,SKU-1-0,1"])
    for n in (1, 2, 3):
        write_orders(folder, f"orders_{n}.csv", [n])
    connector = Connector(load_settings(config))
    sync = lambda: connector.sync_one(connector.sources["warehouse"])  # noqa: E731
    assert sync().read == 4  # the parcel, once; three orders
    assert ("fulfillments_1.csv", None) in asked, asked
    asked.clear()
    write_orders(folder, "orders_2.csv", [2], zip_code="20095")  # rewritten
    os.utime(folder / "orders_2.csv", (1e9, 1e9))
    os.utime(folder / "orders_3.csv", (1e9, 1e9))  # touched, same content
    os.utime(folder / "fulfillments_1.csv", (1e9, 1e9))
    assert sync().read == 1
    assert ("orders_2.csv", None) in asked and ("orders_3.csv", None) in asked
    assert [bool(m) for p, m in asked if p == "fulfillments_1.csv"] == [False, True], asked
    asked.clear()
    assert sync().read == 0 and len(asked) == 1 + 4 and all(mark for _, mark in asked), asked  # each stream asks: all known
    connector.close()
