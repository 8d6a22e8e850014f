"""What ``/readyz`` decides: config loaded (we are running), state writable, and no source failing for
longer than ``ready_max_failure_seconds`` — a single failed poll is normal life, hours of them are not.
A fatal failure (credentials revoked, shop gone, a source's plugin that failed to load) is not ready at once:
waiting cannot fix it, a human must.

The heartbeat that proves the state file takes a commit waits at most ``PROBE_WAIT_SECONDS`` for another
writer's lock, not the 10 s busy timeout (an admin's sqlite3 shell held a probe past Kubernetes' 1 s timeout,
which then failed it without a word of why). A lock met for a moment is no problem: the daemon's own writers
take it for a page or a batch, and wait out the busy timeout themselves; one that keeps the heartbeat out for
longer than that timeout, the bar every writer uses to call the file locked, is not ready, naming the lock. Probes
come seconds apart (Kubernetes: every 10 s), so two brief locks they happen to meet must not add up to one: a
thread waits for the lock a probe met (``_watch``), and once it goes, the next lock met is a new one."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DatabaseError

from connector.job_errors import db_reason, locked
from state import Outbox, Runs
from state import db as state_db

__all__ = ["PROBE_WAIT_SECONDS", "Readiness"]

# Half Kubernetes' default probe timeout (1 s): the answer, ready or not, still reaches the prober within it.
PROBE_WAIT_SECONDS = 0.5


class Readiness:
    def __init__(self, connector: Any, max_failure_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.connector = connector
        self.max_failure = max_failure_seconds
        self.clock = clock
        self._failing_since: dict[str, float] = {}
        # when a failure still open at the last stop began, on ``clock`` (``resume``): the next failure goes on from it
        self._failed_before: dict[str, float] = {}
        self._errors: dict[str, str] = {}
        # failing in a way no retry fixes (not ready at once); kept through later transient failures, which
        # say nothing about whether a human has fixed it
        self._fatal: dict[str, str] = {}
        self._locked_since: float | None = None  # when a probe first met another writer's lock on the state file
        self._watcher: threading.Thread | None = None  # waits for that lock to go (``_watch``)
        self._lock = threading.Lock()

    def resume(self) -> None:
        """Take up the failures the state file shows open (a source's, Karla's): a restart must not start the
        clock of a source broken for hours from zero. Only a new failure uses it, so a problem fixed while the
        daemon was down is not reported before the first poll says so."""
        wall, now = self.connector.now(), self.clock()
        try:
            with self.connector.db.read() as conn:
                open_since = {name: _failing_since(conn, name, drains=False) for name in self.connector.sources}
                open_since[Runs.DELIVERY] = _failing_since(conn, Runs.DELIVERY, drains=True)
        except DatabaseError:  # a convenience: the next failure starts its clock afresh instead
            return
        with self._lock:
            for name, since in open_since.items():
                if since is not None:
                    self._failed_before[name] = now - max(0.0, wall - since)

    def failed(self, name: str, error: str) -> None:
        with self._lock:
            self._began(name)
            self._errors[name] = error

    def fatal(self, name: str, error: str) -> None:
        """Not ready from now on, until ``succeeded(name)``: a transient failure's allowance would only hide it."""
        with self._lock:
            self._began(name)
            self._errors[name] = error
            self._fatal[name] = error

    def _began(self, name: str) -> None:
        """Start ``name``'s failure clock, unless it runs: from the failure open at the last stop, else now."""
        if name not in self._failing_since:
            before = self._failed_before.pop(name, None)
            self._failing_since[name] = self.clock() if before is None else before

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failed_before.pop(name, None)
            self._failing_since.pop(name, None)
            self._errors.pop(name, None)
            self._fatal.pop(name, None)

    def snapshot(self) -> dict[str, Any]:
        with self.connector.db.read() as conn:
            runs = Runs(conn)
            last_ok = {name: runs.last_ok(name) for name in self.connector.sources}
            return {"pending": Outbox(conn).pending_count(), "last_ok": last_ok}

    def check(self) -> tuple[bool, dict[str, Any]]:
        problems: dict[str, str] = {}
        state = self._heartbeat()
        if state:
            problems["state"] = state
        now = self.clock()
        with self._lock:
            for name, since in self._failing_since.items():
                if name in self._fatal:
                    problems[name] = f"stopped, needs a human: {self._fatal[name]}"
                elif now - since > self.max_failure:
                    problems[name] = f"failing for {int(now - since)}s: {self._errors.get(name, '')}"
        return not problems, {"problems": problems}

    def _heartbeat(self) -> str | None:
        """Why the state file takes no commit (None: it took one, or another writer's lock kept it out for less
        than the busy timeout so far, counting this probe's wait)."""
        asked, wait = self.clock(), min(PROBE_WAIT_SECONDS, state_db.BUSY_TIMEOUT_SECONDS)
        try:
            _beat(self.connector.db, self.connector.now(), wait)
        except Exception as exc:  # noqa: BLE001
            with self._lock:
                if not locked(exc):
                    self._locked_since = None
                else:
                    if self._locked_since is None:
                        self._locked_since = asked
                    self._watch()
                since = self._locked_since
            if since is not None and asked - since + wait < state_db.BUSY_TIMEOUT_SECONDS:
                return None
            return f"state file not writable ({self.connector.db.path}): {db_reason(exc)}"
        with self._lock:
            self._locked_since = None
        return None

    def _watch(self) -> None:
        """Whether the lock a probe met is one lock held on: a thread waits for it as a writer does (the busy
        timeout) on its own connection, and takes it for an instant. The moment it gets it, the lock has gone, and
        the next probe that meets one starts counting again. Called under ``_lock``."""
        if self._watcher is not None and self._watcher.is_alive():
            return
        self._watcher = threading.Thread(target=self._wait_for_lock, name="readyz-lock-watch", daemon=True)
        self._watcher.start()

    def _wait_for_lock(self) -> None:
        try:
            conn = sqlite3.connect(self.connector.db.path, timeout=state_db.BUSY_TIMEOUT_SECONDS, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")  # (no write: nothing is committed)
                conn.execute("ROLLBACK")
            finally:
                conn.close()
        except sqlite3.Error:  # held for the whole busy timeout (or failing otherwise): the probes judge it
            return
        with self._lock:
            self._locked_since = None


def _failing_since(conn: Any, source: str, *, drains: bool) -> float | None:
    """When the failure of ``source`` still open in the state file began: its first failed run since its last
    good one (None: its last finished run was good, or it has none). ``drains``: Karla's drains, else a source's
    reads (a source called ``karla`` keeps its own)."""
    kind = f"source = ? AND kind {'=' if drains else '!='} 'deliver'"
    sql = (f"SELECT MIN(started_at) FROM run WHERE {kind} AND status = 'failed' AND id >"
           f" COALESCE((SELECT MAX(id) FROM run WHERE {kind} AND status = 'ok'), 0)")
    value = conn.exec_driver_sql(sql, (source, source)).scalar()
    return None if value is None else float(value)


def _beat(db: Any, at: float, wait: float) -> None:
    """A real commit to the state file (not a TEMP table), as ``StateDB.transaction`` makes it, but waiting at
    most ``wait`` s for the write lock: its connection's busy timeout, set back before it returns to the pool."""
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
        try:
            conn.execution_options(karla_write=True)
            with conn.begin():
                conn.exec_driver_sql("INSERT OR REPLACE INTO heartbeat (id, at) VALUES (1, ?)", (at,))
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(state_db.BUSY_TIMEOUT_SECONDS * 1000)}")
