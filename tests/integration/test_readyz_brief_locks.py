"""/readyz after two brief, unrelated locks on the state file, met by two probes 10 s apart (Kubernetes probes every
10 s; the daemon's own page commits take the lock too): it counted them as one lock held from the first probe and
said "another process held its write lock for over 10 s". A lock that went in between is a new one. Real SQLite
locks from a second connection; a fake clock says how far apart the probes are; the thread that sees the first
lock go is joined, not slept for."""

from __future__ import annotations

from pathlib import Path

from connector.readiness import Readiness
from state import db as state_db
from tests.integration.test_readyz_state_lock import _Connector
from tests.integration.test_state_busy import _locked


def test_two_brief_locks_probes_meet_are_not_one_long_lock(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    connector = _Connector(state)
    now = [0.0]
    readiness = Readiness(connector, 3600, clock=lambda: now[0])
    try:
        with _locked(state):  # a moment: an admin's query, or a page commit
            assert readiness.check() == (True, {"problems": {}})
        watcher = getattr(readiness, "_watcher", None)
        if watcher is not None:  # it sees the lock go
            watcher.join(timeout=30)
        now[0] += state_db.BUSY_TIMEOUT_SECONDS  # the next probe, as Kubernetes sends it
        with _locked(state):  # another moment, unrelated
            assert readiness.check() == (True, {"problems": {}})
            now[0] += state_db.BUSY_TIMEOUT_SECONDS  # this one does last: said as before
            ready, body = readiness.check()
            assert not ready and "held its write lock for over" in body["problems"]["state"], body
    finally:
        connector.db.close()
