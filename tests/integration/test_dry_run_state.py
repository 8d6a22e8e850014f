"""The state file as `sync --dry-run`, a power loss and a user who may not write it find it (found by a
migrations review).

`sync --dry-run` upgraded the real file (one way) before copying it, beside an older release's daemon too;
the reading side committed with ``synchronous=NORMAL``, so a power loss could roll back the rows of a CSV
file already deleted; a read-only file or folder was "an internal error (a bug)", and `run` started anyway.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from connector.app import Connector
from connector.settings import load_settings
from state import open_state
from state.lock import StateLock
from state.migrations import SCHEMA_VERSION
from tests.conftest import cli
from tests.integration.test_upgrade_safety import _as_010, _config, _schema

# Root writes whatever the modes say: drop the capabilities that let it, as a service user lacks them.
NOT_ROOT = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def test_dry_run_beside_an_010_daemon_leaves_its_state_file_alone(tmp_path: Path) -> None:
    state = _as_010(tmp_path / "s.db")
    config = _config(tmp_path, state)
    with StateLock(state, "run"):  # the 0.1.0 daemon: upgraded, the file stops its next start (exit 2)
        done = cli(config, "sync", "--dry-run")
        assert done.returncode == 0, done.stderr
        assert _schema(state) == 4


def test_dry_run_changes_nothing_in_an_010_state_file(tmp_path: Path) -> None:
    state = _as_010(tmp_path / "s.db")
    config = _config(tmp_path, state)
    assert cli(config, "sync", "--dry-run").returncode == 0
    assert _schema(state) == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("s.db")) == ["s.db"]  # no -wal, -shm, lock


def test_dry_run_of_a_newer_state_file_names_the_real_file(tmp_path: Path) -> None:
    state = _as_010(tmp_path / "s.db")
    config = _config(tmp_path, state)
    with sqlite3.connect(state) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    done = cli(config, "sync", "--dry-run")
    assert done.returncode == 2, done.stderr
    assert f"state file {state} has schema version {SCHEMA_VERSION + 1}" in done.stderr, done.stderr


def test_the_reading_side_commits_durably_and_delivery_need_not(tmp_path: Path) -> None:
    """A CSV file is deleted or archived right after its last page's commit: that commit must be on disk
    first (FULL), or a power loss rolls back its orders with the file gone. Delivery's lost commit is a re-send."""
    state = tmp_path / "s.db"
    connector = Connector(load_settings(_config(tmp_path, state)))
    try:
        with connector.db.read() as conn:  # the handle a sync and the daemon read (and queue) through
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        connector.close()
    delivery = open_state(state, durable=False)  # as connector.early's delivery process opens it
    try:
        with delivery.read() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        delivery.close()


def _as_a_user(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a process bound by file modes: as root, without the capabilities that ignore them."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None or subprocess.run([*NOT_ROOT, "true"]).returncode != 0:
            pytest.skip("running as root, which writes read-only files, and setpriv cannot drop that right here")
        prefix = NOT_ROOT
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
    return subprocess.run([*prefix, sys.executable, "-m", "connector", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, env=env, cwd=config.parent)


def _current(state: Path) -> Path:
    open_state(state).close()
    return state


def test_a_read_only_folder_is_a_configuration_error_and_status_still_reads(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    state = _current(folder / "s.db")
    config = _config(tmp_path, state)
    folder.chmod(0o555)
    try:
        for command in (("status",), ("dlq", "list"), ("sync", "--dry-run")):
            done = _as_a_user(config, *command)
            assert done.returncode == 0, (command, done.stderr)
            assert "internal error" not in done.stderr, (command, done.stderr)
        for command in (("dlq", "drop", "1"), ("sync",), ("run",)):
            done = _as_a_user(config, *command)
            assert done.returncode == 2, (command, done.stderr)
            assert str(folder) in done.stderr and "internal error" not in done.stderr, (command, done.stderr)
        assert sorted(p.name for p in folder.iterdir()) == ["s.db"]  # nothing left behind by the reads
    finally:
        folder.chmod(0o755)


def test_a_read_only_file_stops_writers_at_once_naming_it(tmp_path: Path) -> None:
    state = _current(tmp_path / "s.db")
    config = _config(tmp_path, state)
    state.chmod(0o444)
    for command in (("sync",), ("run",), ("dlq", "retry", "1")):
        done = _as_a_user(config, *command)
        assert done.returncode == 2, (command, done.stderr)
        assert f"the state file {state} is not writable by this user" in done.stderr, (command, done.stderr)
        assert "daemon started" not in done.stderr + done.stdout, command
    done = _as_a_user(config, "status")
    assert done.returncode == 0, done.stderr


def test_an_010_state_file_this_user_may_not_write_is_not_read_as_if_current(tmp_path: Path) -> None:
    state = _as_010(tmp_path / "s.db")
    config = _config(tmp_path, state)
    state.chmod(0o444)
    done = _as_a_user(config, "status")
    assert done.returncode == 2, done.stderr
    assert "must upgrade it (schema 4" in done.stderr, done.stderr
    assert _schema(state) == 4
