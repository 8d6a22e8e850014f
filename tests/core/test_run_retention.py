"""The `run` table gains a row per poll, idle ones too: its hot lookups must use an index, and runs older than
30 days are pruned, keeping what `status` (``Runs.last``) and readiness and the lag gauge (``Runs.last_ok``)
show. Found by a long-run review: a year at 60 s polls was 525k rows per source, read whole by every
readiness snapshot (each 5 s and per /metrics scrape: 0.5 s) and 67 MB of the state file."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection

from connector.app import Connector
from connector.errors import ConfigError
from connector.readiness import Readiness
from connector.settings import load_settings
from state import Runs, open_state
from tests.conftest import write_config
from tests.state_files import schema_file

DAY = 86400.0
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


def _plans(conn: Connection, call: Callable[[Runs], object]) -> list[str]:
    """The query plan of each statement ``call`` runs, as SQLite executed it (parameters bound)."""
    seen: list[str] = []
    raw = conn.connection.driver_connection
    raw.set_trace_callback(seen.append)  # type: ignore[union-attr]
    try:
        call(Runs(conn))
    finally:
        raw.set_trace_callback(None)  # type: ignore[union-attr]
    statements = [s for s in seen if "run" in s and not s.startswith(("BEGIN", "COMMIT", "ROLLBACK"))]
    assert statements, seen
    return [" | ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + s)) for s in statements]


def _add(conn: Connection, source: str, kind: str, started: float, status: str = "ok") -> int:
    sql = ("INSERT INTO run (source, kind, started_at, finished_at, status, read, enqueued, unchanged, rejected, delivered, dead)"
           " VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0, 0, 0)")
    return int(conn.exec_driver_sql(sql, (source, kind, started, started + 1, status)).lastrowid)


def test_last_ok_and_the_prune_use_indexes(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        (last_ok,) = _plans(conn, lambda runs: runs.last_ok("w"))
        (last,) = _plans(conn, lambda runs: runs.last("w"))
        (prune,) = _plans(conn, lambda runs: runs.prune("w", 0.0))
    assert "USING INDEX ix_run_ok (source=? AND status=?)" in last_ok, last_ok  # MAX(finished_at): one step
    assert "USING INDEX ix_run_source (source=?)" in last and "TEMP B-TREE" not in last, last
    assert "ix_run_kind (source=? AND kind=?)" in prune and "ix_run_ok" in prune, prune
    assert "SCAN run" not in last_ok + last + prune, (last_ok, last, prune)


def test_an_older_state_file_gains_the_indexes(tmp_path: Path) -> None:
    schema_file(tmp_path / "s.db", 9, "DROP INDEX ix_run_ok", "DROP INDEX ix_run_kind")  # as schema 9 left it
    with open_state(tmp_path / "s.db").read() as conn:
        names = {row[0] for row in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'run'")}
    assert {"ix_run_source", "ix_run_ok", "ix_run_kind"} <= names, names


def test_prune_keeps_each_kinds_latest_and_the_last_good_run(tmp_path: Path) -> None:
    now = NOW.timestamp()
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        old = [_add(conn, "w", "sync", now - (90 - n / 10) * DAY) for n in range(50)]  # 90..85 days ago
        full = _add(conn, "w", "full", now - 60 * DAY)  # the latest full sync, long ago
        good = _add(conn, "w", "sync", now - 50 * DAY)  # the last one that went well
        failed = [_add(conn, "w", "sync", now - d * DAY, "failed") for d in (40, 35)]  # failing since
        other = _add(conn, "x", "sync", now - 90 * DAY)  # another source's only run
        assert Runs(conn).prune("w", now - Runs.KEEP_SECONDS) == 50 + 1
        ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM run ORDER BY id")]
        assert ids == [full, good, failed[1], other], (ids, old)
        assert Runs(conn).last("w")["id"] == failed[1] and Runs(conn).last_ok("w") == now - 50 * DAY + 1  # type: ignore[index]
        assert Runs(conn).prune("w", now - Runs.KEEP_SECONDS) == 0


def test_prune_takes_a_bounded_batch_of_the_oldest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Runs, "PRUNE_BATCH", 10)
    now = NOW.timestamp()
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        for n in range(25):
            _add(conn, "w", "sync", now - 40 * DAY + n)
        recent = _add(conn, "w", "sync", now - DAY)
        assert [Runs(conn).prune("w", now - Runs.KEEP_SECONDS) for _ in range(4)] == [10, 10, 5, 0]
        assert [row[0] for row in conn.exec_driver_sql("SELECT id FROM run")] == [recent]


def test_a_poll_prunes_old_runs_and_status_and_readiness_still_show_theirs(tmp_path: Path) -> None:
    """The poll itself fails (its folder is gone): what `status` and the lag gauge show is then old."""
    config = write_config(tmp_path, "http://127.0.0.1:9")
    connector = Connector(load_settings(config), clock=lambda: NOW)
    now = NOW.timestamp()
    with connector.db.transaction() as conn:
        for n in range(200):
            _add(conn, "warehouse", "sync", now - (100 - n / 10) * DAY)
        _add(conn, "warehouse", "full", now - 45 * DAY)
        _add(conn, "warehouse", "sync", now - 35 * DAY)  # the last good poll
        _add(conn, "warehouse", "sync", now - 34 * DAY, "failed")
        _add(conn, "warehouse", "sync", now - DAY, "failed")
    shutil.rmtree(tmp_path / "files")
    with pytest.raises(ConfigError, match="does not exist"):
        connector.sync_one(connector.sources["warehouse"])
    with connector.db.read() as conn:
        kinds = conn.exec_driver_sql("SELECT kind, status, started_at FROM run ORDER BY id").all()
        last = Runs(conn).last("warehouse")
    assert [tuple(k) for k in kinds] == [
        ("full", "ok", now - 45 * DAY), ("sync", "ok", now - 35 * DAY), ("sync", "failed", now - DAY), ("sync", "failed", now),
    ]
    assert last is not None and last["status"] == "failed" and last["started_at"] == now
    assert Readiness(connector, 3600).snapshot()["last_ok"] == {"warehouse": now - 35 * DAY + 1}
    connector.close()
