"""Upgrading from 0.1.0 (schema 4) beside what 0.1.0 left: a full sync cut short, a daemon still running.

The state files are built as 0.1.0 left them: this release's first four steps, less the columns later steps
add. Found by an upgrade review.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path


from connector.app import Connector
from connector.settings import load_settings
from state.lock import StateLock
from state.migrations import SCHEMA_VERSION
from tests.conftest import SLUG, cli, write_config, write_orders
from tests.state_files import schema_file

OUTBOX_COLUMNS = ("slug, order_key, id_type, part, payload, hash, source, stream, location, first_enqueued_at,"
                  " enqueued_at, attempts, next_attempt_at")


def _as_010(path: Path) -> Path:
    """An empty state file as 0.1.0 (schema 4) created it."""
    return schema_file(path, 4, "DROP INDEX ix_run_ok", "DROP INDEX ix_run_kind", "DROP INDEX ix_dead_letter_order",
                       "ALTER TABLE outbox DROP COLUMN held", "ALTER TABLE outbox DROP COLUMN version",
                       "ALTER TABLE dead_letter DROP COLUMN versions")  # (step 3 rebuilt `delivered` as 0.1.0 had it)


def _schema(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _queued(config: Path, state: Path) -> list[tuple]:
    """The outbox rows a read of the source's files queues (into ``state``), nothing sent."""
    settings = load_settings(config)
    connector = Connector(settings.model_copy(update={"state": settings.state.model_copy(update={"path": state})}))
    try:
        connector.sync_one(connector.sources["warehouse"])
        with connector.db.read() as conn:
            return list(conn.exec_driver_sql(f"SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id"))
    finally:
        connector.close()


def test_older_versions_a_cut_short_010_full_sync_queued_wait_for_the_next_full_sync(tmp_path: Path, sandbox) -> None:
    """0.1.0 held nothing: its full sync, stopped after replaying an older file, left the older versions
    queued, and 0.2.0's first drain sent them to Karla over the newer ones."""
    config = write_config(tmp_path, sandbox.url)
    files = tmp_path / "files"
    write_orders(files, "orders_002.csv", [1, 2], zip_code="22222")  # the newest: Karla has it
    assert cli(config, "sync", env={"KARLA_CONNECTOR_STATE__PATH": str(tmp_path / "sent.db")}).returncode == 0
    with sqlite3.connect(tmp_path / "sent.db") as sent:
        delivered = sent.execute("SELECT slug, order_key, part, hash, delivered_at FROM delivered").fetchall()
    (files / "orders_002.csv").unlink()
    write_orders(files, "orders_001.csv", [1, 2], zip_code="11111")  # what the full sync replayed first
    older = _queued(config, tmp_path / "replayed.db")
    (files / "orders_001.csv").unlink()  # (nothing new to read: the next sync only drains)

    state = _as_010(tmp_path / "state.db")
    started = min(row[10] for row in older) - 1
    with sqlite3.connect(state) as conn:
        conn.executemany("INSERT INTO delivered VALUES (?, ?, ?, ?, ?)", delivered)
        conn.executemany(f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES ({','.join('?' * 13)})", older)
        conn.execute("INSERT INTO run (source, kind, started_at, status, read, enqueued, unchanged, rejected,"
                     " delivered, dead) VALUES ('warehouse', 'full', ?, 'running', 0, 0, 0, 0, 0, 0)", (started,))

    assert cli(config, "sync").returncode == 0
    assert {o["address"]["zip_code"] for o in sandbox.orders(SLUG).values()} == {"22222"}  # was 11111
    status = json.loads(cli(config, "status", "--json").stdout)
    assert (status["held"], status["held_by_source"]) == (2, {"warehouse": 2})

    write_orders(files, "orders_002.csv", [1, 2], zip_code="22222")
    assert cli(config, "sync", "--full").returncode == 0  # finished: what it held is let go
    status = json.loads(cli(config, "status", "--json").stdout)
    assert (status["held"], status["pending"]) == (0, 0)
    assert {o["address"]["zip_code"] for o in sandbox.orders(SLUG).values()} == {"22222"}


def test_only_the_unfinished_full_syncs_source_and_parts_karla_has_are_held(tmp_path: Path) -> None:
    """Rows queued before the run, another source's, and a part Karla never had (it cannot set Karla back)
    go as before."""
    state = _as_010(tmp_path / "s.db")
    row = "INSERT INTO outbox (" + OUTBOX_COLUMNS + ") VALUES ('s', ?, 'order_number', 'order', '{}', 'h', ?, 'o', NULL, ?, ?, 0, 0)"
    run = ("INSERT INTO run (source, kind, started_at, status, read, enqueued, unchanged, rejected, delivered, dead)"
           " VALUES (?, ?, ?, ?, 0, 0, 0, 0, 0, 0)")
    with sqlite3.connect(state) as conn:
        conn.executemany(run, [("w", "sync", 10, "ok"), ("w", "full", 100, "stopped"), ("x", "full", 100, "running"),
                               ("x", "sync", 120, "ok")])
        conn.executemany("INSERT INTO delivered VALUES ('s', ?, 'order', 'old', 1)", [(k,) for k in ("1", "2", "3")])
        conn.executemany(row, [("1", "w", 50, 50), ("2", "w", 150, 150), ("3", "x", 150, 150), ("4", "w", 150, 150)])
    from state import Outbox, open_state

    db = open_state(state)
    try:
        with db.read() as conn:
            assert Outbox(conn).held_by_source() == {"w": 1}
            assert [r.order_key for r in Outbox(conn).scan(None, 10)] == ["1", "3", "4"]
    finally:
        db.close()


def _config(tmp_path: Path, state: Path) -> Path:
    exports = tmp_path / "exports"
    exports.mkdir(exist_ok=True)
    config = tmp_path / "c.toml"
    config.write_text(f'[karla]\nbase_url = "http://127.0.0.1:9"\nshop_slug = "s"\napi_key = "k"\n[state]\npath = "{state}"\n'
                      f'[sources.w]\ntype = "csv"\nurl = "file://{exports}"\n')
    config.chmod(0o600)
    return config


def test_commands_beside_an_010_daemon_leave_its_state_file_alone(tmp_path: Path) -> None:
    """Upgraded, the file could not be opened by the 0.1.0 daemon still running (exit 2 at its next start,
    which systemd does not restart): `dlq retry` took the lock only after opening (upgrading) the file, and
    `status`, `dlq list` and `dlq drop` upgraded it beside the daemon."""
    state = _as_010(tmp_path / "s.db")
    config = _config(tmp_path, state)
    with StateLock(state, "run"):  # the 0.1.0 daemon, which does not sign its lock with its release
        Path(f"{state}.lock").write_text(f"pid {os.getpid()} (run)")
        for command in (("dlq", "retry", "1"), ("dlq", "list"), ("dlq", "drop", "1"), ("status",)):
            done = cli(config, *command)
            assert "in use by pid" in done.stderr, done.stderr
            assert command[1:2] == ("retry",) or "older release (schema 4" in done.stderr, done.stderr
            assert done.returncode == 75, (command, done.stderr)
            assert _schema(state) == 4, command
    assert cli(config, "dlq", "list").returncode == 0  # stopped: the command upgrades the file
    assert _schema(state) == SCHEMA_VERSION
    with StateLock(state, "run"):  # a current daemon: they work beside it, as before
        assert cli(config, "status").returncode == 0
        assert cli(config, "dlq", "list").returncode == 0


def _running_run(state: Path) -> None:
    with sqlite3.connect(state) as conn:
        conn.execute("INSERT INTO run (source, kind, started_at, status, read, enqueued, unchanged, rejected,"
                     " delivered, dead) VALUES ('w', 'full', 100, 'running', 0, 0, 0, 0, 0, 0)")


def test_status_says_a_run_whose_process_is_gone_was_interrupted(tmp_path: Path) -> None:
    """A run killed (or an older release's, stopped before the upgrade) stays 'running' in the file."""
    state = _as_010(tmp_path / "s.db")
    _running_run(state)
    config = _config(tmp_path, state)
    run = json.loads(cli(config, "status", "--json").stdout)["sources"]["w"]["last_run"]
    assert (run["status"], run["running"]) == ("interrupted", False)
    assert "interrupted" in cli(config, "status").stdout
    with StateLock(state, "sync"):  # its process still runs
        run = json.loads(cli(config, "status", "--json").stdout)["sources"]["w"]["last_run"]
    assert (run["status"], run["running"]) == ("running", True)
