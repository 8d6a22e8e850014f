"""Opening the state file: SQLite in WAL mode, created 0600, schema upgraded by numbered migrations.

Durability: WAL with ``synchronous=NORMAL`` survives any process crash. A power loss may roll back the
last commits, but each commit moves the cursor together with its outbox rows, and delivery marks rows
only after Karla's 2xx, so a rollback means at worst an idempotent re-send, never a lost order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DatabaseError

from connector.errors import ConfigError
from state.lock import PATH_ERRNOS, StateInUse, lock_holder
from state.migrations import SCHEMA_VERSION, upgrade

__all__ = ["StateDB", "open_state", "require_existing"]


class StateDB:
    """A thin handle: ``transaction()`` gives one ``BEGIN IMMEDIATE`` unit of work, ``read()`` a snapshot.

    Only writers take SQLite's write lock up front; a read is a deferred transaction, so in WAL mode it
    never waits for (or blocks) a writer: ``status``, ``/metrics`` and the sync's cursor lookups go on
    while delivery commits.
    """

    def __init__(self, engine: Engine, path: Path) -> None:
        self.engine = engine
        self.path = path

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
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
    """Create the file 0600 before SQLite does: it holds customer data. SQLite gives -wal/-shm the same mode."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    os.close(fd)


def require_existing(path: Path | str) -> None:
    """For commands that only look or fix (``status``, ``dlq``): a missing file means a wrong path, and
    creating an empty one there would report "nothing pending"."""
    if not Path(path).exists():
        raise ConfigError(
            f"state file {path} does not exist: nothing has run with this configuration yet, or [state].path "
            "(KARLA_CONNECTOR_STATE__PATH) points somewhere else than the service's"
        )


def open_state(path: Path | str, *, create: bool = True) -> StateDB:
    """The state file, migrated. ``create=False`` is for commands that only look (``status``, ``dlq``), which
    run beside the daemon without its lock: they neither create the file nor upgrade one another process
    uses (``_not_in_use``)."""
    path = Path(path)
    if not create:
        require_existing(path)
    try:
        _create_private(path)
        db = _open(path, None if create else _not_in_use(path))
    except (DatabaseError, OSError) as exc:
        reason = str(exc.orig) if isinstance(exc, DatabaseError) else exc.strerror or str(exc)
        if not _wrong_path(exc, reason):  # locked, disk full, I/O: may pass; exit 4 lets systemd restart
            raise
        raise ConfigError(
            f"cannot open the state file {path}: {reason}; [state].path (KARLA_CONNECTOR_STATE__PATH) must name a "
            "SQLite file (created if missing) in a writable folder"
        ) from None
    return db


def _not_in_use(path: Path) -> Callable[[int], None]:
    """Refuse to upgrade a file another process holds: an older release's daemon cannot open it afterwards
    (it refuses a newer schema with exit 2, which systemd does not restart), nor can it write meanwhile."""

    def guard(before: int) -> None:
        holder = lock_holder(path)
        if holder:
            raise StateInUse(
                f"the state file {path} is in use by {holder} of an older release (schema {before}, this release "
                f"upgrades it to {SCHEMA_VERSION}): stop it, then run this command, which upgrades the file"
            )

    return guard


def _wrong_path(exc: BaseException, reason: str) -> bool:
    """Whether the setting is to blame (a folder, a non-SQLite file, no rights): a configuration error, exit 2
    (systemd does not restart). A full disk or an I/O error is not: the same path works once it passes."""
    if isinstance(exc, OSError):
        return exc.errno in PATH_ERRNOS
    return "unable to open database file" in reason or "file is not a database" in reason


def _open(path: Path, guard: Callable[[int], None] | None = None) -> StateDB:
    # Each pooled connection is used by one thread at a time; the daemon runs jobs on worker threads.
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (IMMEDIATE: take the write lock up front)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # writers take the write lock at BEGIN (no deadlock-prone lock upgrade later); readers don't
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("karla_write") else "BEGIN")

    try:
        upgrade(engine, path, guard)
    except StateInUse:
        engine.dispose()
        raise
    return StateDB(engine, path)
