"""State file: permissions, WAL, migrations that keep data, change detection, the single-process lock."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from connector.errors import ConfigError
from state import SCHEMA_VERSION, Outbox, Part, open_state
from state.lock import StateLock
from state.migrations import MIGRATIONS
from tests.state_files import schema_file


def part(key: str, name: str = "order", payload: str = '{"a":1}', slug: str = "shop") -> Part:
    import hashlib

    return Part(slug, key, "order_number", name, payload, hashlib.md5(payload.encode()).hexdigest(), "src", "orders", f"f.csv:{key}")


def test_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    assert (tmp_path / "s.db").stat().st_mode & 0o777 == 0o600
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == SCHEMA_VERSION


def test_upgrade_from_version_1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        MIGRATIONS[0](conn)
        conn.exec_driver_sql("PRAGMA user_version = 1")
        conn.exec_driver_sql("INSERT INTO cursor (source, stream, value, updated_at) VALUES ('w', 'orders', 'c1', 0)")
    engine.dispose()
    raw.close()
    db = open_state(path)
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT value FROM cursor").scalar() == "c1"
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == SCHEMA_VERSION
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM run").scalar() == 0  # table added by step 2


def test_upgrade_from_version_2_keeps_delivered_hashes(tmp_path: Path) -> None:
    """Step 3 rebuilds `delivered` without a rowid and drops the unused outbox index; no hash is lost."""
    path = tmp_path / "v2.db"
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        MIGRATIONS[0](conn)
        MIGRATIONS[1](conn)
        conn.exec_driver_sql("DROP TABLE delivered")  # the table as releases before step 3 created it
        conn.exec_driver_sql(
            "CREATE TABLE delivered (slug VARCHAR NOT NULL, order_key VARCHAR NOT NULL, part VARCHAR NOT NULL,"
            " hash VARCHAR NOT NULL, delivered_at FLOAT NOT NULL, PRIMARY KEY (slug, order_key, part))"
        )
        conn.exec_driver_sql("INSERT INTO delivered VALUES ('shop', '1', 'order', 'h1', 5)")
        conn.exec_driver_sql("PRAGMA user_version = 2")
    engine.dispose()
    db = open_state(path)
    with db.transaction() as conn:
        ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'delivered'").scalar()
        assert "WITHOUT ROWID" in ddl
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM sqlite_master WHERE name = 'ix_outbox_due'").scalar() == 0
        assert conn.exec_driver_sql("SELECT hash, delivered_at FROM delivered").all() == [("h1", 5.0)]
        # the kept hash still drives change detection: the same part is not queued again
        same = Part("shop", "1", "order_number", "order", "{}", "h1", "src", "orders", None)
        assert Outbox(conn).enqueue([same], now=6).unchanged == 1


def test_a_file_from_the_withdrawn_step_5_upgrades(tmp_path: Path) -> None:
    """A release once wrote schema 5 with a ``refused`` table, then withdrew the step: such a file must not
    be refused as "newer", nor skip a later step that reuses the number."""
    path = schema_file(tmp_path / "v5.db", 4, "CREATE TABLE refused (slug VARCHAR, order_key VARCHAR, part VARCHAR, "
                       "hash VARCHAR, refused_at FLOAT, PRIMARY KEY (slug, order_key, part)) WITHOUT ROWID",
                       "PRAGMA user_version = 5")
    db = open_state(path)
    with db.read() as conn:
        tables = {name for (name,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "on_wire" in tables and "refused" not in tables
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(ConfigError, match="newer than this release"):
        open_state(path)


def test_change_detection_against_pending_and_delivered(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        box = Outbox(conn)
        assert box.enqueue([part("1"), part("2")], now=1).enqueued == 2
        again = box.enqueue([part("1"), part("2", payload='{"a":2}')], now=2)
        assert (again.enqueued, again.unchanged) == (1, 1)
        rows = box.scan(None, 100)
        assert [r.payload for r in rows] == [b'{"a":1}', b'{"a":2}']
        box.mark_delivered(rows, now=3)
        assert box.scan(None, 100) == []
        after = box.enqueue([part("1"), part("2", payload='{"a":2}'), part("2", "tracking:T1")], now=4)
        assert (after.enqueued, after.unchanged) == (1, 2)


def test_newer_version_enqueued_in_flight_stays_pending(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        box = Outbox(conn)
        box.enqueue([part("1")], now=1)
        in_flight = box.scan(None, 10)
        box.enqueue([part("1", payload='{"a":9}')], now=2)  # edited while the request was on the wire
        box.mark_delivered(in_flight, now=3)
        assert [r.payload for r in box.scan(None, 10)] == [b'{"a":9}']


def test_second_holder_of_the_lock_is_refused(tmp_path: Path) -> None:
    with StateLock(tmp_path / "s.db", "run"):
        with pytest.raises(ConfigError, match=r"in use by pid \d+ \(run\)"):
            StateLock(tmp_path / "s.db", "sync").acquire()
    StateLock(tmp_path / "s.db", "sync").acquire().release()  # free again once released


_HOLD_AND_LEAVE = """
import os, sys
from state.lock import StateLock
StateLock(sys.argv[1], "sync").acquire()
if os.fork() == 0:  # the child inherits the locked descriptor, like a sync's delivery process
    os.close(1)
    sys.stdin.read()  # until the test closes our stdin
    os._exit(0)
print("holding", flush=True)
os._exit(0)  # the parent ends without releasing anything, as a killed sync
"""


def test_a_lock_kept_by_a_child_of_an_ended_holder_says_so(tmp_path: Path) -> None:
    """A sync killed while its delivery process sends: that process inherited the lock and keeps it until
    its request is answered. The refusal must not just name the dead pid as if it still ran."""
    path = tmp_path / "s.db"
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_AND_LEAVE, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
        assert proc.wait(timeout=30) == 0
        with pytest.raises(ConfigError, match=r"in use by pid \d+ \(sync\), which is not running here: it has ended and a process it started holds"):
            StateLock(path, "sync").acquire()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the child ends
    fd = os.open(f"{path}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the child has gone
    finally:
        os.close(fd)
    StateLock(path, "sync").acquire().release()


def test_marking_more_rows_than_one_statement_holds(tmp_path: Path) -> None:
    """Large acknowledgements are written in several statements; every row is settled, and a row edited
    in flight (the last one, in the last statement) still stays pending."""
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        box = Outbox(conn)
        box.enqueue([part(f"{n:05d}") for n in range(2500)], now=1)
        in_flight = box.scan(None, 5000)
        box.enqueue([part("02499", payload='{"a":9}')], now=2)
        assert box.mark_delivered(in_flight, now=3) == 2500
        assert [(r.order_key, r.payload) for r in box.scan(None, 5000)] == [("02499", b'{"a":9}')]
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM delivered").scalar() == 2500
        # what Karla acknowledged is remembered: re-reading the same 2,499 parts queues nothing
        assert box.enqueue([part(f"{n:05d}") for n in range(2499)], now=4).unchanged == 2499


def test_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """A read sees the last committed state while another connection holds the write lock; a second writer
    waits for the lock (busy_timeout) instead of failing. ``status`` and ``/metrics`` rely on the first."""
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        Outbox(conn).enqueue([part("1")], now=1)
    other = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        Outbox(conn).enqueue([part("2")], now=2)  # uncommitted, write lock held
        with other.read() as reader:
            reader.exec_driver_sql("PRAGMA busy_timeout = 0")  # a read that had to wait would fail at once
            assert [r.order_key for r in Outbox(reader).scan(None, 10)] == ["1"]
        with pytest.raises(Exception, match="locked"):
            with other.engine.connect() as raw:
                raw.connection.driver_connection.execute("PRAGMA busy_timeout = 0")  # no autobegin
                raw.execution_options(karla_write=True)
                with raw.begin():
                    pass
    with other.read() as reader:
        assert [r.order_key for r in Outbox(reader).scan(None, 10)] == ["1", "2"]
    other.close()
    db.close()


def test_readiness_proves_the_state_file_takes_a_commit(tmp_path: Path) -> None:
    """/readyz writes a heartbeat row into the state file itself (a TEMP table would live elsewhere)."""
    from connector.readiness import Readiness

    class _Connector:
        db = open_state(tmp_path / "s.db")
        sources: dict = {}

        def now(self) -> float:
            return 1234.5

    connector = _Connector()
    assert Readiness(connector, 60).check() == (True, {"problems": {}})
    with connector.db.read() as conn:
        assert conn.exec_driver_sql("SELECT at FROM heartbeat WHERE id = 1").scalar() == 1234.5
    with connector.db.transaction() as conn:  # the file refuses writes there now
        conn.exec_driver_sql("DROP TABLE heartbeat")
        conn.exec_driver_sql("CREATE VIEW heartbeat AS SELECT 1 AS id, 0.0 AS at")
    ready, body = Readiness(connector, 60).check()
    assert ready is False and "state file not writable" in body["problems"]["state"]
    connector.db.close()


@pytest.mark.parametrize("kind", ["folder", "not sqlite"])
def test_a_state_path_that_cannot_be_a_database_is_a_config_error_naming_it(tmp_path: Path, kind: str) -> None:
    # It was an internal error (exit 4) that named neither the path nor the setting.
    path = tmp_path / "state"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_text('[karla]\nshop_slug = "my-shop"\n' * 200)
    with pytest.raises(ConfigError, match=rf"cannot open the state file {path}: .*\[state\]\.path \(KARLA_CONNECTOR_STATE__PATH\)"):
        open_state(path)
    assert path.is_dir() if kind == "folder" else path.read_text().startswith("[karla]")


def test_a_state_folder_this_user_cannot_write_is_a_config_error_naming_it(tmp_path: Path) -> None:
    # It was an internal error (exit 4): "OSError: [Errno 30] Read-only file system: '.../k.db.lock'".
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root writes anywhere: a file where the folder should be instead
            folder.chmod(0o700)
            folder.rmdir()
            folder.write_text("not a folder")
        with pytest.raises(ConfigError, match=r"cannot create .*state.db.lock .*\[state\]\.path \(KARLA_CONNECTOR_STATE__PATH\) must be writable"):
            StateLock(folder / "state.db", "sync").acquire()
    finally:
        if folder.is_dir():
            folder.chmod(0o700)


def test_a_full_disk_or_io_error_is_not_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Exit 2 (configuration) keeps systemd from restarting the daemon (RestartPreventExitStatus=2): a disk
    # that fills up and is freed again must not stop the service for good (found by review).
    import state.lock

    def full(*_args: object, **_kwargs: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state.lock.os, "open", full)
    with pytest.raises(OSError) as caught:
        StateLock(tmp_path / "state.db", "run").acquire()
    assert not isinstance(caught.value, ConfigError) and caught.value.errno == 28


def test_karla_letters_of_a_batch_are_found_by_index(tmp_path: Path) -> None:
    """Every delivered batch looks up Karla's letters of its orders: that must not scan the whole store."""
    db = open_state(tmp_path / "s.db")
    with db.read() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM dead_letter WHERE stage = 'karla' AND slug = 's' AND order_key IN ('1', '2')"
        ).all()
    assert any("ix_dead_letter_order" in str(row) for row in plan), plan


def _written_by(path: Path, step: int, *changes: str) -> Path:
    """A state file as the release with schema ``step`` left it (``changes`` undo what later steps add), with
    one pending row of order 1."""
    held = ("", "") if step < 8 else (", held", ", 0")  # step 8 added it (NOT NULL)
    return schema_file(path, step, *changes, (
        "INSERT INTO outbox (slug, order_key, id_type, part, payload, hash, source, stream, location,"
        f" first_enqueued_at, enqueued_at, attempts, next_attempt_at{held[0]}) VALUES"
        f" ('shop', '1', 'order_number', 'order', '{{}}', 'h', 'src', 'orders', NULL, 1, 1, 0, 0{held[1]})"))


def test_upgrade_to_step_8_keeps_pending_rows_unheld(tmp_path: Path) -> None:
    """An outbox from before step 8 has no ``held`` column: its rows are not held (they go as before)."""
    path = _written_by(tmp_path / "v7.db", 7, "ALTER TABLE outbox DROP COLUMN held")  # the table as releases before step 8 had it
    with open_state(path).read() as conn:
        assert [r.order_key for r in Outbox(conn).scan(None, 10)] == ["1"] and Outbox(conn).held_count() == 0


def test_a_lock_file_left_by_another_user_is_named_with_its_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A `sync` run as root beside the service left a root-owned lock: the message blamed the folder, which was
    # writable. (As root here, the refusal is simulated: os.open raises what the kernel would.)
    import errno
    import os

    from state import lock
    from state.lock import StateLock

    (tmp_path / "s.db.lock").write_text("")
    if os.geteuid() != 0:
        pytest.skip("giving the file to another user needs root")
    os.chown(tmp_path / "s.db.lock", 65534, 65534)
    monkeypatch.setattr(lock.os, "open", lambda *a, **k: (_ for _ in ()).throw(PermissionError(errno.EACCES, "Permission denied")))
    with pytest.raises(ConfigError, match=r"it belongs to (nobody|uid 65534), not to this user.*chown"):
        StateLock(tmp_path / "s.db", "sync").acquire()


def test_a_held_row_is_let_go_by_a_plain_read_and_taken_over_by_a_full_sync_of_another_source(tmp_path: Path) -> None:
    """Held: read by a full sync that did not finish. A plain read of the same version is current data (it
    goes); a full sync under another source name (the source renamed) takes it over, so its end releases it."""
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        box = Outbox(conn)
        box.enqueue([part("1"), part("2")], now=1)
        box.mark_delivered(box.scan(None, 10), now=2)  # Karla has version a=1 of both
        changed = [part("1", payload='{"a":2}'), part("2", payload='{"a":2}')]
        assert box.enqueue(changed, now=3, held=True).enqueued == 2 and box.held_count() == 2 and box.scan(None, 10) == []
        assert box.enqueue([changed[0]], now=4).unchanged == 1  # a plain read of the same version ...
        assert [r.order_key for r in box.scan(None, 10)] == ["1"]  # ... lets it go
        renamed = changed[1]._replace(source="renamed")
        assert box.enqueue([renamed], now=5, held=True).unchanged == 1
        assert box.release_held("renamed") == 1 and [r.order_key for r in box.scan(None, 10)] == ["1", "2"]
        assert box.enqueue([part("3")], now=6, held=True).enqueued == 1 and box.held_count() == 0  # new: not held


def _versioned(key: str, version: str, payload: str, source: str = "src") -> Part:
    from state.parts import VERSION_SEP

    return part(key, payload=payload)._replace(source=source, version=VERSION_SEP.join((source, "orders", version)))


def test_a_re_read_skips_versions_older_than_karlas_or_the_waiting_one(tmp_path: Path) -> None:
    """Versions of one source and stream compare (a CSV file's name): a re-read never queues an older one,
    and one newer than Karla's goes at once (nothing to hold). Another source's versions do not compare:
    a changed one is held, as without versions."""
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        box = Outbox(conn)
        box.enqueue([_versioned("1", "b.csv", '{"a":2}')], now=1)
        box.mark_delivered(box.scan(None, 10), now=2)  # Karla has b.csv's version
        counts = box.enqueue([_versioned("1", "a.csv", '{"a":1}')], now=3, held=True)
        assert (counts.superseded, counts.enqueued) == (1, 0) and box.scan(None, 10) == []
        assert box.enqueue([_versioned("1", "a.csv", '{"a":1}')], now=3).enqueued == 1  # a plain read is current data
        box.remove(box.scan(None, 10))
        assert box.enqueue([_versioned("1", "c.csv", '{"a":3}')], now=4, held=True).enqueued == 1
        assert box.held_count() == 0 and [r.version.endswith("c.csv") for r in box.scan(None, 10)] == [True]
        assert box.enqueue([_versioned("1", "b.csv", '{"a":2}')], now=5, held=True).superseded == 1  # older than the waiting c.csv
        other = _versioned("1", "a.csv", '{"a":9}', source="erp")
        assert box.enqueue([other], now=6, held=True).enqueued == 1 and box.held_count() == 1


def test_a_held_row_does_not_supersede_a_dead_letter(tmp_path: Path) -> None:
    """A row a cut-short full sync holds may be older than a letter's version: retrying the letter sends it."""
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        box = Outbox(conn)
        box.enqueue([part("1")], now=1)
        box.mark_delivered(box.scan(None, 10), now=2)
        box.enqueue([part("1", payload='{"a":0}')], now=3, held=True)
        assert box.held_count() == 1 and not box.changed_since(part("1", payload='{"a":5}'), since=2.5)
        box.enqueue([part("1", payload='{"a":0}')], now=4)  # let go: now it waits to be sent, and is newer
        assert box.changed_since(part("1", payload='{"a":5}'), since=2.5)


def test_upgrade_to_step_9_adds_versions_and_keeps_rows(tmp_path: Path) -> None:
    path = _written_by(tmp_path / "v8.db", 8, "ALTER TABLE outbox DROP COLUMN version",  # as before step 9
                       "INSERT INTO delivered (slug, order_key, part, hash, delivered_at) VALUES ('shop', '2', 'order', 'h', 1)")
    with open_state(path).transaction() as conn:
        box = Outbox(conn)
        (row,) = box.scan(None, 10)
        assert row.version is None and box.enqueue([_versioned("2", "a.csv", '{"a":1}')], now=2, held=True).enqueued == 1
