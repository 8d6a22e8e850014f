"""Read-only counts of the outbox for `status`, the readiness probe and a run's report (and the versions of
orders known, for a source's letters; whether a letter's part was delivered or superseded since), kept apart from ``state.outbox`` (what writes it): none of them
changes a row. ``Outbox`` inherits them, so callers keep writing ``Outbox(conn).pending_count()``."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection

from state.parts import KEYS_PER_LOOKUP, Part, chunks

__all__ = ["OutboxViews"]


class OutboxViews:
    """Counts of waiting and held orders, known versions; every method runs inside the caller's transaction."""

    conn: Connection
    raw: Any  # sqlite3.Connection, same transaction

    def held_count(self, source: str | None = None) -> int:
        sql = "SELECT COUNT(DISTINCT slug || char(0) || order_key) FROM outbox WHERE held" + (" AND source = ?" if source else "")
        return int(self.conn.exec_driver_sql(sql, (source,) if source else ()).scalar() or 0)

    def held_by_source(self) -> dict[str, int]:
        sql = "SELECT source, COUNT(DISTINCT slug || char(0) || order_key) FROM outbox WHERE held GROUP BY source"
        return {source: int(n) for source, n in self.conn.exec_driver_sql(sql)}

    def pending_count(self) -> int:
        return int(self.conn.exec_driver_sql("SELECT COUNT(DISTINCT slug || char(0) || order_key) FROM outbox").scalar() or 0)

    def waiting(self, limit: int = 10) -> tuple[int, list[tuple[str, str, float, str]]]:
        """Orders waiting after a failed delivery: how many, and the next ``limit`` to be tried again as
        (slug, order_key, next_attempt_at, last_error)."""
        count = self.conn.exec_driver_sql(
            "SELECT COUNT(DISTINCT slug || char(0) || order_key) FROM outbox WHERE last_error IS NOT NULL").scalar()
        sql = ("SELECT slug, order_key, MAX(next_attempt_at), MAX(last_error) FROM outbox WHERE last_error IS NOT NULL"
               " GROUP BY slug, order_key ORDER BY MAX(next_attempt_at), slug, order_key LIMIT ?")
        return int(count or 0), [tuple(row) for row in self.conn.exec_driver_sql(sql, (limit,))]  # type: ignore[misc]

    def noted(self, slugs: Collection[str], mark: str) -> str | None:
        """The ``last_error`` of one waiting row of these shops that starts with ``mark`` (None: none does)."""
        if not slugs:
            return None
        sql = (f"SELECT last_error FROM outbox WHERE slug IN ({','.join('?' * len(slugs))})"
               " AND substr(last_error, 1, ?) = ? ORDER BY slug LIMIT 1")
        row = self.raw.execute(sql, (*sorted(slugs), len(mark), mark)).fetchone()
        return row[0] if row else None

    def put_off(self, error_prefix: str, now: float) -> tuple[int, float | None]:
        """Orders postponed past ``now`` after a failure whose ``last_error`` starts with ``error_prefix``:
        how many, and when the first is tried again (None: none). They are why a run did not finish."""
        sql = ("SELECT COUNT(DISTINCT slug || char(0) || order_key), MIN(next_attempt_at) FROM outbox"
               " WHERE next_attempt_at > ? AND substr(last_error, 1, ?) = ?")
        count, first = self.raw.execute(sql, (now, len(error_prefix), error_prefix)).fetchone()
        return int(count or 0), first

    def order_versions(self, slug: str, keys: Collection[str]) -> dict[str, set[str]]:
        """The known versions (``Part.version``) of these orders' order part, delivered or waiting: what a
        source's bad row of an older file is compared with (``connector.pages``). Unknown versions are left out."""
        found: dict[str, set[str]] = {}
        for table in ("delivered", "outbox"):
            for chunk in chunks(sorted(set(keys)), KEYS_PER_LOOKUP):
                sql = (f"SELECT order_key, version FROM {table} WHERE slug = ? AND part = 'order' AND version IS NOT NULL"
                       f" AND order_key IN ({','.join('?' * len(chunk))})")
                for key, version in self.raw.execute(sql, (slug, *chunk)):
                    found.setdefault(key, set()).add(version)
        return found

    def pending_by_source(self) -> dict[str, int]:
        sql = "SELECT source, COUNT(DISTINCT slug || char(0) || order_key) FROM outbox GROUP BY source"
        return {source: int(n) for source, n in self.conn.exec_driver_sql(sql)}

    def changed_since(self, part: Part, since: float) -> bool:
        """Whether a newer version of this part than a dead letter's (written at ``since``) exists: one
        delivered since, or any one pending. The letter's own version left the outbox when it became a
        letter, so a pending one is newer, even if queued before ``since`` (while the refused one was on the
        wire). A held row is not: a full sync cut short queued it, and it may be older."""
        sql = (
            "SELECT 1 FROM delivered WHERE slug = ? AND order_key = ? AND part = ? AND delivered_at > ?"
            " UNION ALL SELECT 1 FROM outbox WHERE slug = ? AND order_key = ? AND part = ? AND NOT held"
        )
        ident = (part.slug, part.order_key, part.part)
        return self.raw.execute(sql, (*ident, since, *ident)).fetchone() is not None

    def was_delivered(self, slug: str, order_key: str, part: str) -> bool:
        """Whether Karla acknowledged some version of this part once (a forgotten one included: it keeps it)."""
        sql = "SELECT 1 FROM delivered WHERE slug = ? AND order_key = ? AND part = ?"
        return self.raw.execute(sql, (slug, order_key, part)).fetchone() is not None
