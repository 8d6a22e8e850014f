"""Read-only judgements of the state file, kept apart from ``connector.commands``: `check` (whether a sync
could open it) and `sync --dry-run` (whether it may be copied) must refuse what ``open_state`` and
``StateLock`` would, without creating, locking or upgrading anything."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from connector.errors import ConfigError
from state import SCHEMA_VERSION
from state.db import read_only_uri
from state.lock import dangling_link, lock_path, refusal

__all__ = ["schema_problem", "state_writable"]


def state_writable(path: Path) -> tuple[bool, str]:
    """Whether a sync could open the state file and its lock, judged without creating or changing either:
    `check` must not say "ok" for a file `sync` then refuses (a lock a root run left, a newer schema, a file
    that is not SQLite, a folder below a regular file), so it runs the same tests read-only."""
    dangling = dangling_link(path)
    if dangling:
        return False, dangling
    real = Path(os.path.realpath(path)) if path.is_symlink() else path  # a link to a file not created yet: its target
    folder = real.parent if str(real.parent) else Path(".")
    if path.is_dir():
        return False, "[state].path names a folder: it must name a file (created if missing)"
    if not folder.is_dir():
        return _missing_folder(folder)
    if _read_only(folder):  # no mode or owner to fix: said as `sync` and `run` say it
        return False, refusal(lock_path(path), OSError(errno.EROFS, os.strerror(errno.EROFS)))
    if not os.access(folder, os.W_OK | os.X_OK):
        return False, f"folder {folder} is not writable by this user ([state].path, KARLA_CONNECTOR_STATE__PATH)"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return False, f"{path} is not readable and writable by this user"
    problem = _lock_problem(lock_path(path)) or (schema_problem(path) if path.exists() else None)
    if problem:
        return False, problem
    return True, "exists, writable" if path.exists() else "not created yet; the folder is writable"


def _read_only(folder: Path) -> bool:
    """Whether the folder is on a read-only mount (a ro bind mount, ``ProtectSystem=strict`` outside
    ``ReadWritePaths=``): ``os.access`` calls that "not writable", and the fix is no chown."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows): the access test below speaks
        return False


def _missing_folder(folder: Path) -> tuple[bool, str]:
    """A missing folder is created by the first sync, unless what exists of its path ends in a regular file."""
    existing = _existing(folder)
    if not existing.is_dir():
        return False, (f"cannot create folder {folder}: {existing} is a file, not a folder; [state].path "
                       "(KARLA_CONNECTOR_STATE__PATH) must name a file in a folder")
    return os.access(existing, os.W_OK), f"folder {folder} does not exist yet; it is created on the first sync"


def _lock_problem(lock: Path) -> str | None:
    """A lock file left by a run as another user (README's root `sync` beside the service) stops every sync:
    open it as the lock does, without creating it, and word the refusal as ``StateLock`` does."""
    if not lock.exists():
        return None
    try:
        os.close(os.open(lock, os.O_RDWR))
    except OSError as exc:
        return refusal(lock, exc)
    return None


def schema_problem(path: Path) -> str | None:
    """What ``open_state`` would refuse: not SQLite, or a schema newer than this release's. Read-only and
    creating nothing (``read_only_uri``). Not judged (None) when commits in the -wal cannot be read without
    writing: a sync, which may write, reads them."""
    try:
        uri = read_only_uri(path)
    except ConfigError:
        return None
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):  # a writer holds it this instant: nothing wrong with the file
            return None
        return _not_sqlite(path, exc)
    except sqlite3.DatabaseError as exc:
        return _not_sqlite(path, exc)
    if version > SCHEMA_VERSION:
        return (f"state file {path} has schema version {version}, newer than this release understands "
                f"({SCHEMA_VERSION}); upgrade karla-connector or point [state].path elsewhere")
    return None


def _not_sqlite(path: Path, exc: Exception) -> str:
    return (f"cannot open the state file {path}: {exc}; [state].path (KARLA_CONNECTOR_STATE__PATH) must name a "
            "SQLite file (created if missing) in a writable folder")


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder
