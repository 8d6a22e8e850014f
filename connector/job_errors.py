"""How the daemon's jobs tell a failure: what kind it is, and once per episode.

A job that fails the same way every poll or drain (a full disk, a revoked key) said so every 30 s, all day;
``Episodes`` says it once at its level and its repeats at DEBUG, until the job works again. ``unwritable``
tells a full disk or an I/O error from a bug for the CLI, `sync`'s reading and its delivery process alike.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DatabaseError, DBAPIError, OperationalError

from connector.errors import ConnectorError, FatalError
from connector.logs import redact

__all__ = ["DELIVERY_STOPPED", "Episodes", "SyncFailure", "db_reason", "is_state_trouble", "state_message", "sync_failure", "unwritable"]

# What the daemon does after Karla refused the key or the shop (said once; /readyz says it all along).
DELIVERY_STOPPED = ("Orders stay queued and delivery is tried again hourly; a changed setting takes effect once the "
                    "service is restarted (the configuration is read only at start)")


def is_state_trouble(exc: BaseException) -> bool:
    """SQLite failing under us (disk full, I/O error, file locked or damaged): the host's to fix, not a bug.
    An IntegrityError or a ProgrammingError is still a bug and keeps its traceback."""
    return isinstance(exc, OperationalError) or type(exc) is DatabaseError


def db_reason(exc: BaseException) -> str:
    """SQLite's own words ("database or disk is full"), without SQLAlchemy's statement and its "Background on
    this error at: https://sqlalche.me/…" link, which mean nothing to a merchant."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig)
    return str(exc)


def state_message(path: Path | str, exc: BaseException) -> str:
    return f"cannot write the state file {path}: {db_reason(exc)} (free disk space or fix the file's folder)"


_FULL = ("database or disk is full", "disk I/O error")  # SQLite's words for SQLITE_FULL and SQLITE_IOERR
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT}


def unwritable(exc: BaseException | None) -> tuple[str | None, str] | None:
    """(the file, why) when ``exc`` is a full disk, a file-size limit or an I/O error writing a file, else None:
    it passes once space is freed, so it is no bug. SQLAlchemy's wrapper is looked through to SQLite's own words;
    SQLite names no file (None: the state file). The delivery process's arrives as ``sqlite3.OperationalError``."""
    while exc is not None:
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            exc = exc.orig
        if isinstance(exc, sqlite3.OperationalError) and any(words in str(exc) for words in _FULL):
            return None, str(exc)
        if isinstance(exc, OSError) and exc.errno in _NO_ROOM and exc.filename:  # unnamed: a closed terminal's EIO
            return str(exc.filename), os.strerror(exc.errno)
        exc = exc.__cause__
    return None


@dataclass(frozen=True)
class SyncFailure:
    status: str  # the sync_runs_total status label
    reason: str  # for /readyz (redacted)
    message: str  # the log line, %-free
    episode: str | None  # said once per episode under this key; None: said each time
    traceback: bool = False


def sync_failure(name: str, exc: Exception, state_path: Path | str) -> SyncFailure:
    """What a failed poll or full sync of source ``name`` tells: its status, reason and log line."""
    if isinstance(exc, FatalError):  # may pass (an unmounted share): the allowance applies, as for any failure
        return SyncFailure("fatal", redact(str(exc)), f"source {name} stopped: {exc}", None)
    if isinstance(exc, (ConnectorError, OSError)):  # an outage: its message says it all
        return SyncFailure("failed", redact(str(exc)), f"source {name} could not finish: {exc}", None)
    if is_state_trouble(exc):  # the source is fine: only the state file could not take what was read
        message = state_message(state_path, exc)
        return SyncFailure("failed", redact(message), f"source {name} not read: {message}", f"state:{name}")
    # a bug in an adapter: as `sync` does, the type and the traceback are what a plugin's author needs
    return SyncFailure("failed", redact(f"{type(exc).__name__}: {exc}"), f"source {name} failed: {exc!r}", None, True)


class Episodes:
    """Problems said once while they last: ``say`` logs at ``level`` the first time, at DEBUG after that;
    ``over`` ends the episode and returns whether there was one (to say it has passed)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.log = logger
        self._open: set[str] = set()
        self._lock = threading.Lock()

    def say(self, key: str | None, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        """``key`` None: a failure that is told each time."""
        with self._lock:
            first = key is None or key not in self._open
            if key is not None:
                self._open.add(key)
        self.log.log(level if first else logging.DEBUG, msg, *args, stacklevel=2, **kwargs)

    def over(self, key: str) -> bool:
        with self._lock:
            was = key in self._open
            self._open.discard(key)
        return was
