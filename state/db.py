"""Opening the state file: SQLite in WAL mode, created 0600, schema upgraded by numbered migrations.

Durability: WAL survives any process crash. The reading side (``durable=True``, the default) commits with
``synchronous=FULL``: a page's outbox rows and cursor are on disk before the adapter goes on, and so before
it deletes or moves a file it read, which a power loss must not leave read but unqueued. The delivery
process (``connector.early``) uses ``NORMAL``: a power loss may roll back its last commits, which only
means an idempotent re-send of what Karla had acknowledged.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DatabaseError

from connector.errors import ConfigError
from state.lock import PATH_ERRNOS, StateInUse, StateNotMounted, dangling_link, probe
from state.migrations import SCHEMA_VERSION, upgrade

__all__ = ["BUSY_TIMEOUT_SECONDS", "StateDB", "open_state", "read_only_uri", "require_existing"]

# How long a write waits for another process's write lock before SQLite says "database is locked"
# (``connector.job_errors.locked``). Our own writers hold it for one page or batch; a longer wait would not
# help against a forgotten sqlite3 shell, and it would hold up /readyz (it commits a heartbeat) and a
# SIGTERM's page in flight as long. Read at each connect, so a test may shorten it.
BUSY_TIMEOUT_SECONDS = 10.0

# The errnos that mean this user may not write the file (or its folder, a read-only mount): not a passing fault.
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
# what to do about a state file or folder on a read-only mount (a ro volume, ProtectSystem=strict)
READ_ONLY_FIX = ("under systemd add ReadWritePaths= for its folder, or keep the state in StateDirectory=; in a "
                 "container, mount it read-write")


class StateDB:
    """A thin handle: ``transaction()`` gives one ``BEGIN IMMEDIATE`` unit of work, ``read()`` a snapshot.

    Only writers take SQLite's write lock up front; a read is a deferred transaction, so in WAL mode it
    never waits for (or blocks) a writer: ``status``, ``/metrics`` and the sync's cursor lookups go on
    while delivery commits.
    """

    def __init__(self, engine: Engine, path: Path, read_only: str | None = None) -> None:
        self.engine = engine
        self.path = path
        self.read_only = read_only  # why this user may not write the file; None: it may

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        if self.read_only:  # opened to look (``status``) by a user who may not write: a fix needs one who may
            raise ConfigError(f"{self.read_only}; this command changes it: run it as a user who may write it")
        with self.engine.connect() as conn:
            conn.execution_options(karla_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn
            conn.rollback()

    def close(self) -> None:
        self.engine.dispose()


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite does: it holds customer data. SQLite gives -wal/-shm the same mode.
    Through a link to a file not created yet, at the link's target (``O_EXCL`` refuses the link itself, "File
    exists"); a link into a folder that does not exist was refused before (``dangling_link``)."""
    if path.exists():
        return
    real = Path(os.path.realpath(path))
    real.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(real, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    os.close(fd)


def _refuse_dangling(path: Path | str) -> None:
    dangling = dangling_link(path)
    if dangling:
        raise StateNotMounted(dangling)


def require_existing(path: Path | str) -> None:
    """For commands that only look or fix (``status``, ``dlq``): a missing file means a wrong path, and
    creating an empty one there would report "nothing pending"."""
    _refuse_dangling(path)
    if not Path(path).exists():
        raise ConfigError(
            f"state file {path} does not exist: nothing has run with this configuration yet, or [state].path "
            "(KARLA_CONNECTOR_STATE__PATH) points somewhere else than the service's"
        )


def open_state(path: Path | str, *, create: bool = True, durable: bool = True) -> StateDB:
    """The state file, migrated. ``create=False`` is for commands that only look (``status``, ``dlq``), which
    run beside the daemon without its lock: they neither create the file nor upgrade one another process
    uses (``_not_in_use``); a file this user may not write they open read-only, if its schema is current.
    A writer refuses such a file at once: it would fail at its first commit, after reading a source.
    ``durable=False`` (``synchronous=NORMAL``) only for delivery: see the module's docstring."""
    path = Path(path)
    if not create:
        require_existing(path)
    _refuse_dangling(path)
    try:
        _create_private(path)
        denied = _not_writable(path)
        if denied and create:
            fix = (READ_ONLY_FIX if "on a read-only file system" in denied else
                   "the service's user must own the file and its folder (e.g. chown)")
            raise ConfigError(f"{denied}; {fix}, or point [state].path (KARLA_CONNECTOR_STATE__PATH) elsewhere")
        if denied:
            return _open_read_only(path, denied)
        db = _open(path, None if create else _not_in_use(path), durable, wal=create)
    except (DatabaseError, OSError) as exc:
        reason = str(exc.orig) if isinstance(exc, DatabaseError) else exc.strerror or str(exc)
        if not _wrong_path(exc, reason):  # locked, disk full, I/O: may pass; exit 4 lets systemd restart
            raise
        raise ConfigError(
            f"cannot open the state file {path}: {reason}; [state].path (KARLA_CONNECTOR_STATE__PATH) must name a "
            "SQLite file (created if missing) in a writable folder"
        ) from None
    return db


class _HolderUpgrades(Exception):
    """The lock's holder upgrades the file itself (its lock names this schema, or it is being written): it took
    the lock and is on its way to the upgrade. Raised inside the upgrade's transaction, which lets go of the write
    lock that holder waits for."""


def _not_in_use(path: Path) -> Callable[[int], None]:
    """Refuse to upgrade a file another process holds: an older release's daemon cannot open it afterwards
    (it refuses a newer schema with exit 2, which systemd does not restart), nor can it write meanwhile."""

    def guard(before: int) -> None:
        holder, schema = probe(path)
        if not holder:
            return
        if (schema or 0) >= SCHEMA_VERSION or holder == "another process":  # (a lock being written this instant)
            raise _HolderUpgrades(holder)
        raise StateInUse(f"the state file {path} is in use by {holder} of an older release (schema {before}, this "
                         f"release upgrades it to {SCHEMA_VERSION}): stop it, then run this command, which upgrades "
                         "the file")

    return guard


def _upgrade(engine: Engine, path: Path, guard: Callable[[int], None] | None) -> None:
    """``upgrade``, waiting (as long as a write waits for SQLite's lock) for a holder of this release that has
    taken the lock and not yet upgraded the file: a `status` in that instant must not call it an older release."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            upgrade(engine, path, guard)
            return
        except _HolderUpgrades as exc:
            if time.monotonic() >= deadline:
                raise StateInUse(f"the state file {path} is in use by {exc}, which has not upgraded it to schema "
                                 f"{SCHEMA_VERSION} within {BUSY_TIMEOUT_SECONDS:g} s: run this command again once "
                                 "it has started") from None
            _pause()


def _pause() -> None:
    time.sleep(0.05)


def _wrong_path(exc: BaseException, reason: str) -> bool:
    """Whether the setting is to blame (a folder, a non-SQLite file, no rights): a configuration error, exit 2
    (systemd does not restart). A full disk or an I/O error is not: the same path works once it passes."""
    if isinstance(exc, OSError):
        return exc.errno in PATH_ERRNOS
    return any(s in reason for s in ("unable to open database file", "file is not a database", "readonly database"))


def _not_writable(path: Path) -> str | None:
    """Why this user may not write the file or create its -wal and -shm beside it (None: it may). Asked
    of the kernel for this process's effective rights, so root without CAP_DAC_OVERRIDE is told too. Through a link,
    the target's folder: SQLite writes them beside the real file."""
    folder = Path(os.path.realpath(path)).parent
    try:
        os.close(os.open(path, os.O_RDWR))
    except OSError as exc:
        if exc.errno not in _DENIED:
            raise
        if exc.errno == errno.EROFS:  # a read-only mount: no owner or mode to fix
            return f"the state file {path} is on a read-only file system ({exc.strerror})"
        return f"the state file {path} is not writable by {_user()} ({exc.strerror})"
    if not os.access(folder, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        return (f"the folder {folder} of the state file {path} is not writable by {_user()}; SQLite writes its -wal "
                "and -shm there")
    return None


def _user() -> str:
    try:
        import pwd

        return f"this user ({pwd.getpwuid(os.geteuid()).pw_name}, uid {os.geteuid()})"
    except (KeyError, ImportError):
        return f"this user (uid {os.geteuid()})"


def read_only_uri(path: Path) -> str:
    """A URI that reads the file without writing or creating anything: one in use (its -wal and -shm exist)
    through them, any other as immutable, since a plain read-only open of a WAL file leaves new -wal and
    -shm files behind. Refused when commits wait in the -wal without its -shm: read as immutable, they would be
    missed (letters dropped shown again), and a reader may not build a new -shm."""
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    live = wal.exists() and shm.exists()
    if not live and wal.exists() and wal.stat().st_size > 0:
        raise ConfigError(f"the state file {path} has changes in {wal} that cannot be read without {shm}, which is "
                          "missing (copied without it, or deleted): run `karla-connector status` once as the service's "
                          "user, which reads them into the file, or copy the file with its -wal into a folder you may "
                          "write")
    return f"{path.resolve().as_uri()}?{'mode=ro' if live else 'immutable=1'}"


def read_only_engine(path: Path) -> Engine:
    """An engine that reads ``path`` without writing a byte (``read_only_uri``; its ``ConfigError`` passes on)."""
    uri = read_only_uri(path)
    return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))


def _open_read_only(path: Path, why: str) -> StateDB:
    """For looking only (``status``, ``dlq list``), when this user may not write: nothing to upgrade, or refused."""
    engine = read_only_engine(path)
    with engine.connect() as conn:
        version = int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if version != SCHEMA_VERSION:
        engine.dispose()
        if version > SCHEMA_VERSION:
            raise ConfigError(f"state file {path} has schema version {version}, newer than this release understands "
                              f"({SCHEMA_VERSION}); upgrade karla-connector or point [state].path elsewhere")
        raise ConfigError(f"{why}, and this release must upgrade it (schema {version} to {SCHEMA_VERSION}) before "
                          "reading it: run this once as a user who may write it (the service's)")
    return StateDB(engine, path, read_only=why)


def _open(path: Path, guard: Callable[[int], None] | None = None, durable: bool = True, wal: bool = True) -> StateDB:
    """``wal=False`` for commands that look beside the daemon: a file not in WAL mode (restored from a backup) is left
    as it is for the next sync or run to convert; the change waits for every reader, as a write does. A connection
    opened before it follows the file into WAL mode at its next transaction."""
    # Each pooled connection is used by one thread at a time; the daemon runs jobs on worker threads.
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (IMMEDIATE: take the write lock up front)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")  # first: WAL below may wait too
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # writers take the write lock at BEGIN (no deadlock-prone lock upgrade later); readers don't
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("karla_write") else "BEGIN")

    try:
        _upgrade(engine, path, guard)
    except StateInUse:
        engine.dispose()
        raise
    return StateDB(engine, path)
