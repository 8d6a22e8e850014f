"""Deliver runs (review finding ops5-6): kept for `status`, one per failing stretch, and pruned after 30 days
like every run, keeping the latest. Real state files; the CLI side is in
tests/integration/test_health_status_review.py."""

from __future__ import annotations

from pathlib import Path

from state import Runs, open_state

DAY = 86400.0
NOW = 1_796_000_000.0


def test_old_deliver_runs_are_pruned_keeping_the_latest(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        for day in range(40, 30, -1):  # ten old drains, each with something delivered
            Runs(conn).delivered(NOW - day * DAY, NOW - day * DAY + 1, {"delivered": 1}, None)
        Runs(conn).delivered(NOW - 31 * DAY, NOW - 31 * DAY + 1, {}, "Karla unavailable: 503")
        Runs(conn).delivered(NOW, NOW + 1, {"delivered": 3}, None)  # prunes all but the latest before it is added
        kept = conn.exec_driver_sql("SELECT started_at, status FROM run WHERE kind = 'deliver' ORDER BY id").all()
        Runs(conn).delivered(NOW + 30, NOW + 31, {"delivered": 1}, None)
        later = conn.exec_driver_sql("SELECT started_at FROM run WHERE kind = 'deliver' ORDER BY id").all()
    assert kept == [(NOW - 31 * DAY, "failed"), (NOW, "ok")]
    assert later == [(NOW,), (NOW + 30,)]


def test_a_repeated_failure_is_one_run_and_the_last_one_shows(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        runs = Runs(conn)
        runs.delivered(NOW, NOW + 1, {"delivered": 2}, None)
        runs.delivered(NOW + 30, NOW + 31, {}, "Karla unavailable: 503")
        runs.delivered(NOW + 60, NOW + 61, {"dead": 1}, "Karla unavailable: 503")
        assert runs.last_delivery() is not None
        last = runs.last_delivery()
        runs.delivered(NOW + 90, NOW + 91, {}, "401 invalid_merchant_or_key")  # another failure in a row: the same run
        count = conn.exec_driver_sql("SELECT COUNT(*) FROM run WHERE kind = 'deliver'").scalar()
        newest = runs.last_delivery()
        assert runs.last("karla") is None  # a source named like the delivery runs' own sees none of them
    assert (last["started_at"], last["finished_at"], last["dead"], last["status"]) == (NOW + 30, NOW + 61, 1, "failed")
    assert count == 2 and newest is not None
    assert (newest["started_at"], newest["error"]) == (NOW + 30, "401 invalid_merchant_or_key")
