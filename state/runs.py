"""The run log: a row per poll or sync (and per drain that sent or failed) with its counts, for `status`,
readiness and lag.

Apart from the other stores (``state.stores``) because it shares nothing with them but the connection, and
its retention (``prune``) is a concern of its own. Each method runs in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

__all__ = ["Runs"]


class Runs:
    COUNTS = ("read", "enqueued", "unchanged", "rejected", "delivered", "dead")
    KEEP_SECONDS = 30 * 86400  # runs older than this are pruned, except what `status` and readiness show
    PRUNE_BATCH = 1000  # the oldest runs a run's start looks at: ~0.2 ms when none is old enough
    DELIVERY = "karla"  # the ``source`` of ``deliver`` runs; a source of that name keeps its own by ``kind``

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def start(self, source: str, kind: str, now: float) -> int:
        sql = (
            "INSERT INTO run (source, kind, started_at, status, read, enqueued, unchanged, rejected, delivered, dead)"
            " VALUES (?, ?, ?, 'running', 0, 0, 0, 0, 0, 0)"
        )
        return int(self.conn.exec_driver_sql(sql, (source, kind, now)).lastrowid)

    def finish(self, run_id: int, status: str, counts: dict[str, int], now: float, error: str | None = None) -> None:
        sets = ", ".join(f"{name} = ?" for name in self.COUNTS)
        values = tuple(int(counts.get(name, 0)) for name in self.COUNTS)
        sql = f"UPDATE run SET status = ?, finished_at = ?, error = ?, {sets} WHERE id = ?"
        self.conn.exec_driver_sql(sql, (status, now, error, *values, run_id))

    def last(self, source: str) -> dict[str, Any] | None:
        sql = "SELECT * FROM run WHERE source = ? AND kind != 'deliver' ORDER BY id DESC LIMIT 1"
        row = self.conn.exec_driver_sql(sql, (source,)).mappings().first()
        return dict(row) if row else None

    def last_failure(self, source: str) -> dict[str, Any] | None:
        """The newest finished run of the source if it failed (None: it succeeded, or none finished): what a
        run in progress, or one cut short, leaves the reason of a failing source to."""
        sql = "SELECT * FROM run WHERE source = ? AND kind != 'deliver' AND status IN ('ok', 'failed') ORDER BY id DESC LIMIT 1"
        row = self.conn.exec_driver_sql(sql, (source,)).mappings().first()
        return dict(row) if row and row["status"] == "failed" else None

    def last_ok(self, source: str) -> float | None:
        sql = "SELECT MAX(finished_at) FROM run WHERE source = ? AND status = 'ok' AND kind != 'deliver'"
        return self.conn.exec_driver_sql(sql, (source,)).scalar()

    def delivered(self, started: float, now: float, counts: dict[str, int], error: str | None) -> None:
        """Record a drain that sent something or failed, under ``DELIVERY`` (a drain serves every source).
        A failure after a failure extends that run (``finished_at``, counts, the newest error) instead of adding
        one: the daemon drains every 30 s through an outage, and its start says since when it fails. Any wording
        counts: one outage reads 503, then "Connection refused", then 503 with another request id."""
        self.prune(self.DELIVERY, now - self.KEEP_SECONDS)
        last = self.last_delivery()
        if error is not None and last and last["status"] == "failed":
            sql = "UPDATE run SET finished_at = ?, error = ?, delivered = delivered + ?, dead = dead + ? WHERE id = ?"
            counted = (int(counts.get("delivered", 0)), int(counts.get("dead", 0)))
            self.conn.exec_driver_sql(sql, (now, error, *counted, last["id"]))
            return
        self.finish(self.start(self.DELIVERY, "deliver", started), "ok" if error is None else "failed", counts, now, error)

    def last_delivery(self) -> dict[str, Any] | None:
        sql = "SELECT * FROM run WHERE source = ? AND kind = 'deliver' ORDER BY id DESC LIMIT 1"
        row = self.conn.exec_driver_sql(sql, (self.DELIVERY,)).mappings().first()
        return dict(row) if row else None

    def prune(self, source: str, before: float) -> int:
        """Delete the source's runs started before ``before``, at most ``PRUNE_BATCH`` of its oldest, keeping its
        latest run of each kind and its last good one (``last`` and ``last_ok``: `status`, readiness, lag).

        Every poll adds a run: kept for ever they were 67 MB a year per source at 60 s polls. Called when
        a run starts, a bounded look at the oldest rows (``ix_run_source``) keeps the table at the retention
        without a scan; a backlog (an upgraded file) goes a batch per run."""
        sql = (
            "DELETE FROM run WHERE id IN (SELECT old.id FROM (SELECT id, kind, status, started_at, finished_at FROM run"
            " WHERE source = ? ORDER BY id LIMIT ?) AS old WHERE old.started_at < ?"
            " AND old.id < (SELECT MAX(id) FROM run WHERE source = ? AND kind = old.kind)"
            " AND NOT (old.status = 'ok' AND old.kind != 'deliver' AND old.finished_at >="
            " (SELECT MAX(finished_at) FROM run WHERE source = ? AND status = 'ok' AND kind != 'deliver')))"
        )
        return int(self.conn.exec_driver_sql(sql, (source, self.PRUNE_BATCH, before, source, source)).rowcount or 0)
