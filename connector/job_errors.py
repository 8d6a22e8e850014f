"""How the daemon's jobs tell a failure: what kind it is, and once per episode.

A job that fails the same way every poll or drain (a full disk, a revoked key) said so every 30 s, all day;
``Episodes`` says it once at its level and its repeats at DEBUG, until the job works again. ``unwritable``
tells a full disk or an I/O error from a bug for the CLI, `sync`'s reading and its delivery process alike;
``locked`` tells a state file another process kept locked (exit 3: it passes, nothing is lost).
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
from state import db as state_db

__all__ = ["DELIVERY_STOPPED", "SOURCE_FIX", "Episodes", "StateBusy", "SyncFailure", "busy_message", "db_reason",
           "is_state_trouble", "locked", "read_again", "source_episode", "state_message", "sync_failure", "unwritable"]

# What the daemon does after Karla refused the key or the shop (said once; /readyz says it all along).
DELIVERY_STOPPED = ("Orders stay queued and delivery is tried again hourly; a changed setting takes effect once the "
                    "service is restarted (the configuration is read only at start)")
# What a source's "needs a fix" failure adds: it is polled again, with the settings and credentials read at start.
SOURCE_FIX = "a changed setting or credential takes effect once the service is restarted"


def is_state_trouble(exc: BaseException) -> bool:
    """SQLite failing under us (disk full, I/O error, file locked or damaged): the host's to fix, not a bug.
    An IntegrityError or a ProgrammingError is still a bug and keeps its traceback."""
    return isinstance(exc, OperationalError) or type(exc) is DatabaseError


def db_reason(exc: BaseException) -> str:
    """SQLite's own words ("database or disk is full"), without SQLAlchemy's statement and its "Background on
    this error at: https://sqlalche.me/…" link, which mean nothing to a merchant; a lock with who held it."""
    words = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc)
    if locked(exc):  # (/readyz: "not writable" alone sends one looking at the disk)
        return f"{words}: another process held its write lock for over {state_db.BUSY_TIMEOUT_SECONDS:g} s"
    return words


def state_message(path: Path | str, exc: BaseException) -> str:
    if locked(exc):  # no disk to free: another process's lock, which passes
        return busy_message(path)
    return f"cannot write the state file {path}: {db_reason(exc)} (free disk space or fix the file's folder)"


class StateBusy(ConnectorError):
    """The delivery process met a ``locked`` state file: its message (``busy_message``) is what `sync` says, and
    what `status` keeps as the last delivery's error."""


def busy_message(path: Path | str | None) -> str:
    """The timeout is read now, not at import: a test shortens it."""
    what = f"the state file {path}" if path else "the state file"
    return (f"{what} was locked by another process for over {state_db.BUSY_TIMEOUT_SECONDS:g} s (an open sqlite3 "
            "shell or another program writing it, or a very slow disk?)")


def locked(exc: BaseException | None) -> bool:
    """SQLite's SQLITE_BUSY ("database is locked"): another process held the write lock past the busy timeout.
    Not a bug, nor a full disk: what is queued stays queued and the next try goes on. SQLAlchemy's wrapper and
    causes are looked through; the delivery process's arrives as ``StateBusy``."""
    while exc is not None:
        if isinstance(exc, StateBusy):
            return True
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            exc = exc.orig
        if isinstance(exc, sqlite3.OperationalError) and (
                getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_BUSY or "database is locked" in str(exc)):
            return True
        exc = exc.__cause__
    return False


_SQLITE_BUSY = 5  # (extended codes such as SQLITE_BUSY_SNAPSHOT share its low byte)
_FULL = ("database or disk is full", "disk I/O error")  # SQLite's words for SQLITE_FULL and SQLITE_IOERR
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT}


def unwritable(exc: BaseException | None) -> tuple[str | None, str] | None:
    """(the file, why) when ``exc`` is a full disk, a file-size limit or an I/O error writing a file, else None:
    it passes once space is freed, so it is no bug. SQLAlchemy's wrapper is looked through to SQLite's own words;
    SQLite names no file (None: the state file). The delivery process's arrives as ``sqlite3.OperationalError``.
    A ``locked`` state file counts too (it passes as well): callers that say why ask ``locked`` first."""
    if locked(exc):
        return None, "database is locked"
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
    """What a failed poll or full sync of source ``name`` tells: its status, reason and log line. Each is said
    once while it lasts (``Episodes.tell``): a missing folder polled every second said so every second."""
    if isinstance(exc, FatalError):  # may pass (an unmounted share): the allowance applies, as for any failure
        # not "stopped": it is polled again (a refused login logs in again), and a share mounted again reads;
        # but with the settings read at start: a fixed credential file quietly changed nothing until a restart
        return SyncFailure("fatal", redact(str(exc)), f"source {name} failed, needs a fix (tried again every poll): "
                           f"{exc}; {SOURCE_FIX}", source_episode(name))
    if isinstance(exc, (ConnectorError, OSError)):  # an outage: its message says it all
        return SyncFailure("failed", redact(str(exc)), f"source {name} could not finish: {exc}", source_episode(name))
    if is_state_trouble(exc):  # the source is fine: only the state file could not take what was read
        message = state_message(state_path, exc)
        return SyncFailure("failed", redact(message), f"source {name} not read: {message}", f"state:{name}")
    # a bug in an adapter: as `sync` does, the type and the traceback are what a plugin's author needs (once)
    return SyncFailure("failed", redact(f"{type(exc).__name__}: {exc}"), f"source {name} failed: {exc!r}",
                       source_episode(name), True)


def source_episode(name: str) -> str:
    return f"source:{name}"


def read_again(episodes: Episodes, name: str) -> str | None:
    """The INFO line for a source that reads again after a failure said once (None: none was open); both its
    episodes end (its own failure, the state file's)."""
    failed, unwritten = episodes.over(source_episode(name)), episodes.over(f"state:{name}")
    if unwritten:
        return f"source {name} read again: the state file takes writes again"
    return f"source {name} read again: the failure logged before has passed" if failed else None


class Episodes:
    """Problems said once while they last: ``say`` logs at ``level`` the first time, at DEBUG after that;
    ``tell`` too, but a different text is a new problem, said at ``level`` again (a source's folder found,
    its login then refused); ``over`` ends the episode and returns whether there was one (to say it has passed)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.log = logger
        self._open: dict[str, str | None] = {}  # key -> the text ``tell`` said (None: ``say``, any text)
        self._lock = threading.Lock()

    def say(self, key: str | None, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        """``key`` None: a failure that is told each time."""
        first = self._first(key, None)
        self.log.log(level if first else logging.DEBUG, msg, *args, stacklevel=2, **kwargs)

    def tell(self, key: str | None, level: int, text: str, **kwargs: Any) -> None:
        """``text`` as it is (no %-formatting): an exception's words may hold a '%'."""
        first = self._first(key, text)
        self.log.log(level if first else logging.DEBUG, "%s", text, stacklevel=2, **kwargs)

    def _first(self, key: str | None, text: str | None) -> bool:
        if key is None:
            return True
        with self._lock:
            first = key not in self._open or self._open[key] != text
            self._open[key] = text
        return first

    def over(self, key: str) -> bool:
        with self._lock:
            return self._open.pop(key, _NONE) is not _NONE


_NONE = object()
