"""Numbered schema migrations keyed on SQLite's ``PRAGMA user_version``.

A release only ever appends a step. Opening an older state file applies the missing steps in one
transaction; a file written by a newer release is refused instead of being damaged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlmodel import SQLModel

from connector.errors import ConfigError
from state import models

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "upgrade", "schema_version"]


def _v1_initial(conn: Connection) -> None:
    tables = [models.Cursor, models.OutboxItem, models.Delivered, models.DeadLetter, models.SeenFile]
    SQLModel.metadata.create_all(conn, tables=[t.__table__ for t in tables])  # type: ignore[attr-defined]


def _v2_runs_and_outbox_order(conn: Connection) -> None:
    # Sync runs arrived in 0.1. (The index below turned out unused and step 3 drops it.)
    SQLModel.metadata.create_all(conn, tables=[models.Run.__table__])  # type: ignore[attr-defined]
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_outbox_due ON outbox (next_attempt_at)")


def _v3_leaner_delivery_tables(conn: Connection) -> None:
    # Every outbox write paid for ix_outbox_due, which no query uses (delivery scans in key order), and
    # `delivered`, keyed by its primary key alone, kept a rowid B-tree beside its key index. Both showed
    # as a sixth of the SQLite time of a 100k-order sync; WITHOUT ROWID stores `delivered` in one B-tree.
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_outbox_due")
    conn.exec_driver_sql(
        "CREATE TABLE delivered_v3 (slug VARCHAR NOT NULL, order_key VARCHAR NOT NULL, part VARCHAR NOT NULL,"
        " hash VARCHAR NOT NULL, delivered_at FLOAT NOT NULL, PRIMARY KEY (slug, order_key, part)) WITHOUT ROWID"
    )
    conn.exec_driver_sql("INSERT INTO delivered_v3 SELECT slug, order_key, part, hash, delivered_at FROM delivered")
    conn.exec_driver_sql("DROP TABLE delivered")
    conn.exec_driver_sql("ALTER TABLE delivered_v3 RENAME TO delivered")


def _v4_heartbeat(conn: Connection) -> None:
    # /readyz proved "writable" with a TEMP table, which lives outside the state file; it now commits here.
    SQLModel.metadata.create_all(conn, tables=[models.Heartbeat.__table__])  # type: ignore[attr-defined]


def _v5_refused_withdrawn(conn: Connection) -> None:
    # Step 5 once created a `refused` table and was withdrawn (an order refused for its parcel was never sent
    # again once the parcel was fixed). Files written meanwhile have version 5, so the number stays taken;
    # step 6 drops the table for them.
    pass


def _v6_on_wire(conn: Connection) -> None:
    # A process killed while a request was on the wire left no trace of it: the request may have reached
    # Karla, yet its parts' older acknowledged versions were still trusted (``Outbox.drop_acknowledged``).
    conn.exec_driver_sql("DROP TABLE IF EXISTS refused")  # see step 5
    SQLModel.metadata.create_all(conn, tables=[models.OnWire.__table__])  # type: ignore[attr-defined]


def _v7_karla_letters_by_order(conn: Connection) -> None:
    # Each delivered batch looks for Karla's letters of its orders (a fixed order clears its letter): without
    # this index that scanned every letter per batch once any letter of Karla's existed.
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_dead_letter_order ON dead_letter (stage, slug, order_key)")


def _v8_held_by_a_full_sync(conn: Connection) -> None:
    # A full sync replays older versions (older files first) before the newest replaces them; cut short, it
    # left them queued, and the next drain sent Karla older data. Its rows are held until one finishes.
    columns = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(outbox)")}
    if "held" not in columns:  # (a file created at step 1 by this release has it already)
        conn.exec_driver_sql("ALTER TABLE outbox ADD COLUMN held BOOLEAN NOT NULL DEFAULT 0")


def _v9_versions(conn: Connection) -> None:
    # A re-read of an older file (a full sync, `dlq retry`, a file left in place for its letters) queued its
    # older versions as if current. Each part now carries the version it was read at (a file's name), and a
    # letter Karla refused keeps its parts' versions for `dlq retry`.
    for table, column, kind in (("outbox", "version", "VARCHAR"), ("delivered", "version", "VARCHAR"), ("dead_letter", "versions", "TEXT")):
        columns = {row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({table})")}
        if column not in columns:  # (step 1 of this release creates `outbox` and `dead_letter` with it already)
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _v10_run_lookups(conn: Connection) -> None:
    # Readiness asks each source's last good run every 5 s and at each /metrics scrape, and a run's start
    # prunes old runs keeping each kind's latest (``Runs.prune``): by `ix_run_source` alone both read every
    # run the source ever had (a year of 60 s polls: 525k rows, 0.5 s per scrape).
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_run_ok ON run (source, status, finished_at)")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_run_kind ON run (source, kind, id)")


def _v11_hold_an_unfinished_full_sync(conn: Connection) -> None:
    # Step 8 let go of every row: 0.1.0 held nothing. A full sync of 0.1.0 that never finished (stopped, killed,
    # failed: its source's latest run) left the older versions it replayed queued, and the first drain after
    # the upgrade sent them. Its rows are held as this release holds its own (``Outbox.enqueue``: a part Karla
    # has, of no comparable version; this release's own rows carry one, or were held by it already), until
    # that source's next full sync finishes (``Outbox.release_held``).
    latest = conn.exec_driver_sql("SELECT MAX(id) FROM run WHERE kind != 'deliver' GROUP BY source").all()
    for (run_id,) in latest:
        sql = "SELECT source, started_at FROM run WHERE id = ? AND kind = 'full' AND status != 'ok'"
        for source, started_at in conn.exec_driver_sql(sql, (run_id,)).all():
            conn.exec_driver_sql(
                "UPDATE outbox SET held = 1 WHERE source = ? AND enqueued_at >= ? AND NOT held AND version IS NULL"
                " AND EXISTS (SELECT 1 FROM delivered AS d WHERE d.slug = outbox.slug AND d.order_key = outbox.order_key"
                " AND d.part = outbox.part)",
                (source, started_at),
            )


def _v12_dead_letter_ids_never_reused(conn: Connection) -> None:
    # Without AUTOINCREMENT SQLite gave a new letter max(id) + 1, so once the highest letter was dropped (or
    # cleared by a clean read) the next one took its id, and `dlq drop ID` from an earlier `dlq list` hit it.
    # SQLite cannot add AUTOINCREMENT to a table: it is rebuilt, keeping every row (with its id), column and
    # index; copying the ids in sets sqlite_sequence to the highest, so a new id is above every id kept.
    ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'dead_letter'").scalar()
    if ddl is None or "AUTOINCREMENT" in ddl.upper():  # (step 1 of this release creates it so)
        return
    indexes = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'dead_letter' AND sql IS NOT NULL"
    ).all()
    for name, _ in indexes:  # index names are the database's: the rebuilt table's would collide
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    conn.exec_driver_sql("ALTER TABLE dead_letter RENAME TO dead_letter_v11")
    SQLModel.metadata.create_all(conn, tables=[models.DeadLetter.__table__])  # type: ignore[attr-defined]
    for name, sql in indexes:  # an index the model does not name (none today) is kept as it was
        if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).first() is None:
            conn.exec_driver_sql(sql)
    old = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(dead_letter_v11)")]
    new = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(dead_letter)")}
    missing = [c for c in old if c not in new]
    if missing:  # a column this release does not know: refuse (the transaction undoes the rebuild) rather than lose it
        raise ConfigError(f"state file: table dead_letter has column(s) {', '.join(missing)} this release does not "
                          "know; upgrade karla-connector")
    columns = ", ".join(f'"{c}"' for c in old)
    conn.exec_driver_sql(f"INSERT INTO dead_letter ({columns}) SELECT {columns} FROM dead_letter_v11")
    conn.exec_driver_sql("DROP TABLE dead_letter_v11")


def _v13_karla_target(conn: Connection) -> None:
    # The state file did not say which Karla acknowledged its deliveries: one filled by the sandbox, used against
    # the real Karla, sent nothing of what the sandbox had. The row notes that Karla and whether it was the sandbox
    # (its answers say so); nothing is recorded until the next drain delivers.
    SQLModel.metadata.create_all(conn, tables=[models.KarlaTarget.__table__])  # type: ignore[attr-defined]


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_initial, _v2_runs_and_outbox_order, _v3_leaner_delivery_tables, _v4_heartbeat, _v5_refused_withdrawn,
    _v6_on_wire, _v7_karla_letters_by_order, _v8_held_by_a_full_sync, _v9_versions, _v10_run_lookups,
    _v11_hold_an_unfinished_full_sync, _v12_dead_letter_ids_never_reused, _v13_karla_target,
]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)


def upgrade(engine: Engine, path: Path, guard: Callable[[int], None] | None = None) -> int:
    """Bring the file to ``SCHEMA_VERSION``; returns the version it had before. ``guard(before)`` is asked
    before an older file is changed, and may refuse (raise): nothing is written then. A current file is only
    read: ``status`` and ``dlq list`` must not wait for another process's write lock (a sqlite3 shell's open
    transaction, a slow commit), as every open did when it took the lock to look at the version."""
    with engine.connect() as conn:  # a deferred read: in WAL mode it never waits for a writer
        before = schema_version(conn)
        conn.rollback()
    _refuse_newer(before, path)
    if before == SCHEMA_VERSION:
        return before
    with engine.connect() as conn:
        conn.execution_options(karla_write=True)  # BEGIN IMMEDIATE: two processes opening an old file take turns
        with conn.begin():
            before = schema_version(conn)  # again under the lock: another process may have upgraded it meanwhile
            _refuse_newer(before, path)
            if guard is not None and before < SCHEMA_VERSION:
                guard(before)
            for number in range(before + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[number - 1](conn)
                conn.exec_driver_sql(f"PRAGMA user_version = {number}")
    return before


def _refuse_newer(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"state file {path} has schema version {version}, newer than this release understands "
            f"({SCHEMA_VERSION}); upgrade karla-connector or point [state].path elsewhere"
        )
