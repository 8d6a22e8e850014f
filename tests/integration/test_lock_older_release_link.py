"""A state path through a symlink and an older release's daemon (found by a review of this session's changes).

Releases before 0.2.0 lock ``<path as configured>.lock``; this release locks ``<real path>.lock``. Through a link
those differ, so an older daemon still running during an upgrade was invisible: a new `sync` took its own lock
and drained the same outbox (orders twice). The lock beside the configured path is now taken and probed too.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from state.lock import StateInUse, StateLock, legacy_lock_path, lock_holder, lock_path
from tests.conftest import SLUG, cli, write_config, write_orders
from tests.integration.test_lock_review6 import _linked
from tests.integration.test_upgrade_safety import _as_010, _config, _schema

# What 0.1.0's StateLock does: an exclusive flock on ``<configured path>.lock``, naming its holder in it.
_OLDER_DAEMON = """
import fcntl, os, sys
fd = os.open(sys.argv[1] + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)
os.write(fd, f"pid {os.getpid()} (run)".encode())
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def older_daemon(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    """A 0.1.0 daemon configured with the link, holding its lock until the test ends."""
    real, link = _linked(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", _OLDER_DAEMON, str(link)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield real, link, proc.pid
    finally:
        proc.communicate("")


def test_an_older_daemon_through_the_link_is_seen_and_refuses_a_sync(older_daemon, tmp_path: Path, sandbox) -> None:
    real, link, pid = older_daemon
    assert lock_holder(link) == f"pid {pid} (run)"  # status, dlq list/drop's upgrade guard
    config = write_config(tmp_path, sandbox.url)
    config.write_text(config.read_text().replace(f'path = "{real}"', f'path = "{link}"'))
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    done = cli(config, "sync")
    assert done.returncode == 75, done.stderr
    assert f"is in use by pid {pid} (run) (through {link}.lock, the lock of releases before 0.2.0)" in done.stderr
    assert sandbox.orders(SLUG) == {}  # the older daemon drains this outbox: nothing sent beside it


def test_commands_beside_an_older_daemon_through_the_link_leave_its_file_alone(older_daemon, tmp_path: Path) -> None:
    real, link, pid = older_daemon
    _as_010(real)
    config = _config(tmp_path, link)
    for command in (("dlq", "list"), ("dlq", "drop", "1"), ("status",)):
        done = cli(config, *command)
        assert done.returncode == 75, (command, done.stderr)
        assert f"in use by pid {pid} (run) of an older release (schema 4" in done.stderr, done.stderr
    assert _schema(real) == 4  # not upgraded under the daemon, which could not open it again


def test_both_locks_or_neither(older_daemon) -> None:
    real, link, pid = older_daemon
    with pytest.raises(StateInUse, match=f"pid {pid}"):
        StateLock(link, "sync").acquire()
    assert lock_holder(real) is None  # the real file's lock, taken first, was let go
    with StateLock(real, "run"):  # a daemon configured with the real path takes it
        pass


def test_a_sync_through_the_link_holds_the_older_releases_lock_too(tmp_path: Path) -> None:
    real, link = _linked(tmp_path)
    with StateLock(link, "sync"):
        fd = os.open(f"{link}.lock", os.O_RDWR)  # an older release starting now
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        assert lock_holder(link, here="this process") == "this process"
    assert lock_holder(link) is None and lock_holder(real) is None  # both let go


def test_no_second_lock_without_a_link_or_through_a_linked_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    os.symlink(tmp_path / "data", tmp_path / "via")
    assert legacy_lock_path(tmp_path / "data" / "state.db") is None
    assert legacy_lock_path(tmp_path / "via" / "state.db") is None  # the same lock file: taken once, not twice
    with StateLock(tmp_path / "via" / "state.db", "sync"):
        assert lock_path(tmp_path / "via" / "state.db").exists()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["state.db.lock"]
