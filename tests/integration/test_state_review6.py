"""The state file's open beside other processes and odd files (found by a state-file review, round 6): a `status`
in the instant between a new `sync` taking the lock and upgrading the file called it "an older release"; a path
linked into a missing volume; a restored file not in WAL mode; commits in a -wal whose -shm is missing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from connector.errors import ConfigError
from state import db as state_db
from state.db import open_state
from state.lock import StateInUse, StateLock, lock_holder, lock_path
from state.migrations import SCHEMA_VERSION
from tests.conftest import cli
from tests.integration.test_dry_run_state import _as_a_user
from tests.integration.test_upgrade_safety import _as_010, _config, _schema

# This release's `sync`: it takes the lock, then (when told) opens the file, which upgrades it.
_NEW_SYNC = """
import sys
from state.db import open_state
from state.lock import StateLock
StateLock(sys.argv[1], "sync").acquire()
print("locked", flush=True)
if sys.stdin.readline() == "open\\n":
    open_state(sys.argv[1]).close()
    print("upgraded", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def new_sync(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", _NEW_SYNC, str(tmp_path / "state.db")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        proc.communicate("")


def test_a_look_beside_a_new_sync_about_to_upgrade_waits_for_it(new_sync, tmp_path: Path, monkeypatch) -> None:
    """It refused with exit 75, "in use by pid N (sync) of an older release (schema 4 ...): stop it"."""
    state = _as_010(tmp_path / "state.db")
    assert "karla-connector" in lock_path(state).read_text()  # the holder's release, for the guard
    assert lock_holder(state) == f"pid {new_sync.pid} (sync)"  # (its own release is not repeated in messages)

    def holder_upgrades() -> None:  # the look has let go of the write lock and waits: the sync goes on
        assert new_sync.stdin is not None and new_sync.stdout is not None
        new_sync.stdin.write("open\n")
        new_sync.stdin.flush()
        assert new_sync.stdout.readline() == "upgraded\n"

    monkeypatch.setattr(state_db, "_pause", holder_upgrades)
    open_state(state, create=False).close()
    assert _schema(state) == SCHEMA_VERSION


def test_a_new_sync_that_does_not_upgrade_in_time_is_not_called_an_older_release(new_sync, tmp_path: Path,
                                                                                  monkeypatch) -> None:
    state = tmp_path / "state.db"
    state.touch()  # created by the sync a moment ago: schema 0
    monkeypatch.setattr(state_db, "BUSY_TIMEOUT_SECONDS", 0.2)
    with pytest.raises(StateInUse) as refused:
        open_state(state, create=False)
    assert "older release" not in str(refused.value)
    said = f"in use by pid {new_sync.pid} (sync), which has not upgraded it to schema {SCHEMA_VERSION} within 0.2 s"
    assert said in str(refused.value)
    assert _schema(state) == 0


def test_a_state_path_linked_into_a_missing_volume_is_named_and_nothing_is_created(tmp_path: Path) -> None:
    """`check` said "ok ... not created yet"; `sync` created vol/sub/ and its lock there, then failed "File exists"."""
    (tmp_path / "conf").mkdir()
    link = tmp_path / "conf" / "link.db"
    os.symlink(tmp_path / "vol" / "sub" / "state.db", link)
    config = _config(tmp_path, link)
    said = f"{link} is a link to {tmp_path}/vol/sub/state.db, which does not exist (an unmounted volume?)"
    check = cli(config, "check")
    assert check.returncode == 2 and said in check.stdout, check.stdout
    for command in (("sync",), ("status",), ("dlq", "list"), ("dlq", "retry", "--all")):
        done = cli(config, *command)
        # 3, which systemd retries (a volume mounted late passes); 2 is never restarted (RestartPreventExitStatus)
        assert done.returncode == 3 and said in done.stderr, (command, done.stderr)
    assert not (tmp_path / "vol").exists()


def test_a_folder_on_the_way_linked_to_nothing_is_named_too(tmp_path: Path) -> None:
    os.symlink(tmp_path / "mnt" / "data", tmp_path / "data")
    with pytest.raises(ConfigError, match=f"{tmp_path}/data is a link to {tmp_path}/mnt/data, which does not exist"):
        StateLock(tmp_path / "data" / "state.db", "sync").acquire()
    assert not (tmp_path / "mnt").exists()


def _restored(path: Path) -> Path:
    """A current state file in rollback-journal mode, as `VACUUM INTO` (a backup) leaves it."""
    open_state(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    return path


def test_status_reads_a_restored_file_beside_a_reader_without_converting_it(tmp_path: Path) -> None:
    """It converted the file to WAL (a write): beside a reader it failed after 5 s, "locked ... for over 10 s"."""
    state = _restored(tmp_path / "state.db")
    reader = sqlite3.connect(state, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM outbox").fetchone()  # holds a shared lock until it ends
        for command in (("status",), ("dlq", "list")):
            done = cli(_config(tmp_path, state), *command)
            assert done.returncode == 0, (command, done.stderr)
    finally:
        reader.close()
    with sqlite3.connect(state) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # the next sync converts it
    open_state(state).close()
    with sqlite3.connect(state) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_change_to_wal_waits_as_long_as_a_write_does(tmp_path: Path, monkeypatch) -> None:
    """It waited SQLite's default 5 s, set before the busy timeout, and was then called "locked for over 10 s"."""
    state = _restored(tmp_path / "state.db")
    monkeypatch.setattr(state_db, "BUSY_TIMEOUT_SECONDS", 0.2)
    reader = sqlite3.connect(state, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM outbox").fetchone()
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            open_state(state)
        assert time.monotonic() - started < 3
    finally:
        reader.close()


# A process that commits a dead letter and ends without closing: the commit stays in the -wal.
_COMMIT_AND_END = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint=0")
conn.execute("INSERT INTO dead_letter (created_at, stage, source, reason) VALUES (1, 'source', 'w', 'second')")
os._exit(0)
"""


def test_commits_in_a_wal_without_its_shm_are_not_silently_missed(tmp_path: Path) -> None:
    """Read as immutable, `status` by a user who may not write showed what the -wal's commits had changed
    (a dropped letter, a sent order) as it was before."""
    state = tmp_path / "state.db"
    db = open_state(state)
    with db.transaction() as conn:
        conn.exec_driver_sql("INSERT INTO dead_letter (created_at, stage, source, reason)"
                             " VALUES (1, 'source', 'w', 'first')")
    db.close()
    subprocess.run([sys.executable, "-c", _COMMIT_AND_END, str(state)], check=True)
    Path(f"{state}-shm").unlink()  # a copy without it
    state.chmod(0o444)
    config = _config(tmp_path, state)
    for command in (("status",), ("dlq", "list")):
        done = _as_a_user(config, *command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert f"has changes in {state}-wal that cannot be read without {state}-shm" in done.stderr, done.stderr
    done = cli(config, "sync", "--dry-run")
    assert done.returncode == 2 and f"{state}-shm, which is missing" in done.stderr, done.stderr
    state.chmod(0o644)
    assert cli(config, "status").returncode == 0  # the service's user: reads the -wal in
    state.chmod(0o444)
    listed = json.loads(_as_a_user(config, "dlq", "list", "--json").stdout)
    assert [letter["reason"] for letter in listed] == ["first", "second"]
