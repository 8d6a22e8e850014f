"""What ``/readyz`` decides: config loaded (we are running), state writable, and no source failing for
longer than ``ready_max_failure_seconds`` — a single failed poll is normal life, hours of them are not.
A fatal failure (credentials revoked, shop gone, a source's plugin that failed to load) is not ready at once:
waiting cannot fix it, a human must."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from connector.job_errors import db_reason
from state import Outbox, Runs

__all__ = ["Readiness"]


class Readiness:
    def __init__(self, connector: Any, max_failure_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.connector = connector
        self.max_failure = max_failure_seconds
        self.clock = clock
        self._failing_since: dict[str, float] = {}
        self._errors: dict[str, str] = {}
        # failing in a way no retry fixes (not ready at once); kept through later transient failures, which
        # say nothing about whether a human has fixed it
        self._fatal: dict[str, str] = {}
        self._lock = threading.Lock()

    def failed(self, name: str, error: str) -> None:
        with self._lock:
            self._failing_since.setdefault(name, self.clock())
            self._errors[name] = error

    def fatal(self, name: str, error: str) -> None:
        """Not ready from now on, until ``succeeded(name)``: a transient failure's allowance would only hide it."""
        with self._lock:
            self._failing_since.setdefault(name, self.clock())
            self._errors[name] = error
            self._fatal[name] = error

    def succeeded(self, name: str) -> None:
        with self._lock:
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
        try:
            with self.connector.db.transaction() as conn:  # a real commit to the state file (not a TEMP table)
                conn.exec_driver_sql("INSERT OR REPLACE INTO heartbeat (id, at) VALUES (1, ?)", (self.connector.now(),))
        except Exception as exc:  # noqa: BLE001
            problems["state"] = f"state file not writable ({self.connector.db.path}): {db_reason(exc)}"
        now = self.clock()
        with self._lock:
            for name, since in self._failing_since.items():
                if name in self._fatal:
                    problems[name] = f"stopped, needs a human: {self._fatal[name]}"
                elif now - since > self.max_failure:
                    problems[name] = f"failing for {int(now - since)}s: {self._errors.get(name, '')}"
        return not problems, {"problems": problems}
