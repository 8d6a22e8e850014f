"""/readyz while another process holds the state file's write lock (an admin's sqlite3 shell with BEGIN IMMEDIATE).

Its heartbeat commit waited the whole busy timeout (10 s) inside the request: a Kubernetes probe (1 s timeout by
default) failed by timeout, without a word of why. It waits at most ``PROBE_WAIT_SECONDS``; a lock met for less
than the busy timeout (the daemon's own writers take it for a page or a batch) is no problem, one kept longer is
not ready, naming the lock. The lock is a real second SQLite connection; no sleeps: a fake clock says how long
the lock has lasted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from connector.readiness import PROBE_WAIT_SECONDS, Readiness
from state import db as state_db
from state import open_state
from tests.conftest import SLUG, write_config, write_orders
from tests.integration.test_daemon import free_port, wait_until
from tests.integration.test_state_busy import _env, _locked


class _Connector:
    def __init__(self, path: Path) -> None:
        self.db = open_state(path)
        self.sources: dict = {}
        self.at = 1000.0

    def now(self) -> float:
        return self.at


def _timed(readiness: Readiness) -> tuple[bool, dict, float]:
    started = time.monotonic()
    ready, body = readiness.check()
    return ready, body, time.monotonic() - started


def test_a_lock_is_waited_for_briefly_and_named_once_it_lasts(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    connector = _Connector(state)
    now = [0.0]
    readiness = Readiness(connector, 3600, clock=lambda: now[0])
    assert readiness.check() == (True, {"problems": {}})
    try:
        with _locked(state):
            ready, body, took = _timed(readiness)  # a moment: the daemon's writers may hold it for a page
            assert (ready, body) == (True, {"problems": {}}) and took < 3 * PROBE_WAIT_SECONDS, took
            now[0] += state_db.BUSY_TIMEOUT_SECONDS  # still held at a later probe: as long as any writer waits
            ready, body, took = _timed(readiness)
            assert not ready and took < 3 * PROBE_WAIT_SECONDS, took
            assert body["problems"]["state"] == (
                f"state file not writable ({state}): database is locked: another process held its write lock for "
                f"over {state_db.BUSY_TIMEOUT_SECONDS:g} s")
        connector.at = 2000.0
        assert readiness.check() == (True, {"problems": {}})  # the lock went: the heartbeat is written again
        with connector.db.read() as conn:
            assert conn.exec_driver_sql("SELECT at FROM heartbeat WHERE id = 1").scalar() == 2000.0
        with _locked(state):  # a new lock is a new moment, not the old one's continuation
            assert readiness.check() == (True, {"problems": {}})
        with connector.db.read() as conn:  # the pooled connection got its busy timeout back
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == int(state_db.BUSY_TIMEOUT_SECONDS * 1000)
    finally:
        connector.db.close()


def test_the_daemon_answers_a_one_second_probe_while_the_state_file_is_locked(tmp_path: Path, sandbox) -> None:
    """The real daemon with its real busy timeout (10 s), probed as Kubernetes does: a 1 s timeout."""
    port = free_port()
    config = write_config(tmp_path, sandbox.url, extra=f"[daemon]\nhealth_port = {port}\n")
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    with (tmp_path / "daemon.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "connector", "--config", str(config), "run"], stdout=log,
                                stderr=subprocess.STDOUT, env=_env(), cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        wait_until(lambda: _ready(url) and len(sandbox.orders(SLUG)) == 1, timeout=30, what="a ready daemon")
        with _locked(tmp_path / "state.db"):
            probe = httpx.get(url, timeout=1.0)
        assert probe.status_code == 200 and probe.json() == {"ready": True, "problems": {}}, probe.text
        assert httpx.get(url, timeout=1.0).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.HTTPError:
        return False
