"""The outbox: parts of orders waiting for Karla, written with change detection against what was delivered.

Hot paths use one statement per page (executemany / IN lists) rather than per-row ORM calls: a nightly
full sync of 100k orders must cost a few hundred SQLite statements, not a few hundred thousand. They run
on the driver's own connection (the same one, inside the caller's transaction): SQLAlchemy's per-row
result processing was a quarter of delivery time in the 100k benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection

from state.outbox_views import OutboxViews
from state.parts import (
    KEYS_PER_LOOKUP, PENDING_COLUMNS, ROWS_PER_STATEMENT, EnqueueCounts, Part, PendingRow, chunks, comparable, older,
)

__all__ = ["EnqueueCounts", "Part", "PendingRow", "Outbox"]


class Outbox(OutboxViews):
    """Operations on ``outbox`` and ``delivered``; every method runs inside the caller's transaction. The
    read-only counts `status` and a run's report use (``pending_count``, ``waiting``...) come from ``OutboxViews``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.raw: Any = conn.connection.driver_connection  # sqlite3.Connection, same transaction

    def _by_order(self, columns: str, table: str, orders: Iterable[tuple[str, str]], where: str = "") -> Iterator[tuple]:
        """Rows of ``table`` for these (slug, order_key) pairs: one ``IN`` list per shop and chunk of keys."""
        by_slug: dict[str, set[str]] = {}
        for slug, key in orders:
            by_slug.setdefault(slug, set()).add(key)
        for slug, keys in by_slug.items():
            for chunk in chunks(sorted(keys), KEYS_PER_LOOKUP):
                marks = ",".join(["?"] * len(chunk))
                yield from self.raw.execute(f"SELECT {columns} FROM {table} WHERE slug = ? AND order_key IN ({marks}){where}", (slug, *chunk))

    def _known(self, parts: Sequence[Part]) -> dict[tuple[str, str, str], tuple[str, str | None]]:
        """What Karla acknowledged for these parts: (hash, version)."""
        rows = self._by_order("slug, order_key, part, hash, version", "delivered", ((p.slug, p.order_key) for p in parts))
        return {(slug, key, part): (digest, version) for slug, key, part, digest, version in rows}

    def enqueue(
        self, parts: Sequence[Part], now: float, held: bool = False, replay: Collection[tuple[str, str]] | None = None,
        reread: bool = False,
    ) -> EnqueueCounts:
        """Write new or changed parts; a part equal to what Karla has, or to what is pending, is skipped.

        A plain read is current data: its version goes, and a held pending row equal to it is let go. A
        re-read may replay older versions, so it skips (``superseded``) a version older than the one Karla
        has or that waits (``Part.version``: same source and stream), and one of known version where a plain
        read's of unknown version waits:

        - ``held``, a full sync: a changed version of a part Karla has that cannot be compared is held until
          a full sync of its source finishes (``release_held``), as it may be older than Karla's.
        - ``replay``, a dead letter's file read again: only the letters' orders (``(slug, order_key)``) go
          as changed; the file's other orders are queued only if Karla never had them and none waits.
        - ``reread``, a file read before and read again (rewritten): nothing more than the skipping.

        A part Karla has never had cannot set Karla back, and goes as usual.
        """
        counts = EnqueueCounts()
        if not parts:
            return counts
        delivered = self._known(parts)
        pending = self._pending(parts)
        rereading = held or replay is not None or reread
        refused = self._refused(parts) if rereading else {}
        rows, touched = [], []
        for p in parts:
            ident = (p.slug, p.order_key, p.part)
            acknowledged, karla_version = delivered.get(ident, (None, None))
            hash_, was_held, version = pending.get(ident, (acknowledged, False, karla_version))
            if hash_ == p.hash:
                counts.unchanged += 1
                if was_held:  # a plain read lets it go; a full sync's takes it over (a renamed source)
                    touched.append((held, p.source, p.stream, *ident))
                continue
            older_than_known = rereading and (self._superseded(p, ident in pending and not was_held, version, karla_version)
                                              or older(p.version, refused.get(ident)))
            not_asked_for = replay is not None and (p.slug, p.order_key) not in replay and (ident in delivered or ident in pending)
            if older_than_known or not_asked_for:
                counts.superseded += 1
                continue
            hold = held and ident in delivered and not comparable(p.version, karla_version)  # else: the newest read
            rows.append((*p, now, now, hold))  # Part's fields are the first ten columns
            pending[ident] = (p.hash, False, p.version)
        if touched:
            self.raw.executemany(
                "UPDATE outbox SET held = ?, source = ?, stream = ? WHERE slug = ? AND order_key = ? AND part = ?", touched
            )
        if rows:
            self.raw.executemany(
                "INSERT INTO outbox (slug, order_key, id_type, part, payload, hash, source, stream, location, version,"
                " first_enqueued_at, enqueued_at, held, attempts, next_attempt_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,0,0)"
                " ON CONFLICT(slug, order_key, part) DO UPDATE SET payload=excluded.payload, hash=excluded.hash,"
                " id_type=excluded.id_type, location=excluded.location, version=excluded.version, enqueued_at=excluded.enqueued_at,"
                " source=excluded.source, stream=excluded.stream, held=excluded.held, attempts=0, next_attempt_at=0,"
                " last_error=NULL",
                rows,
            )
            counts.enqueued = len(rows)
        return counts

    def _refused(self, parts: Sequence[Part]) -> dict[tuple[str, str, str], str]:
        """The versions of these parts that Karla refused (its letters): a re-read's older one must not go in
        their place, where Karla's acceptance of it would clear the letter of the newer one."""
        found: dict[tuple[str, str, str], str] = {}
        rows = self._by_order("slug, order_key, versions", "dead_letter", ((p.slug, p.order_key) for p in parts),
                              " AND stage = 'karla' AND versions IS NOT NULL")
        for slug, key, versions in rows:
            for part, version in json.loads(versions).items():
                if not older(version, found.get((slug, key, part))):
                    found[(slug, key, part)] = version
        return found

    @staticmethod
    def _superseded(part: Part, waits: bool, version: str | None, karla_version: str | None) -> bool:
        """Whether a re-read's ``part`` is older than what waits (``waits``: a plain read's row) or Karla has;
        a plain read's waiting row of unknown version (from before versions, a letter) counts as newer."""
        return older(part.version, version) or older(part.version, karla_version) \
            or (waits and part.version is not None and version is None)

    def _pending(self, parts: Sequence[Part]) -> dict[tuple[str, str, str], tuple[str, bool, str | None]]:
        rows = self._by_order("slug, order_key, part, hash, held, version", "outbox", ((p.slug, p.order_key) for p in parts))
        return {(slug, key, part): (digest, bool(held), version) for slug, key, part, digest, held, version in rows}

    def scan(self, after: tuple[str, str] | None, limit: int) -> list[PendingRow]:
        """Pending rows in (slug, order_key, part) order, strictly after the group ``after``."""
        if after is None:
            sql = f"SELECT {PENDING_COLUMNS} FROM outbox WHERE NOT held ORDER BY slug, order_key, part LIMIT ?"
            params: tuple = (limit,)
        else:
            sql = (
                f"SELECT {PENDING_COLUMNS} FROM outbox WHERE (slug > ? OR (slug = ? AND order_key > ?)) AND NOT held"
                " ORDER BY slug, order_key, part LIMIT ?"
            )
            params = (after[0], after[0], after[1], limit)
        return list(map(PendingRow._make, self.raw.execute(sql, params).fetchall()))

    def queued_after(self, after_id: int, limit: int = KEYS_PER_LOOKUP) -> list[tuple[int, str, str, str, str, str]]:
        """Rows queued after row ``after_id`` (id, slug, order_key, part, source, stream), oldest first.

        All parts, not only orders: a caller that waits for orders still moves past the trackings, so
        each row is looked at once (a filter on ``part`` re-read every tracking on every call)."""
        sql = "SELECT id, slug, order_key, part, source, stream FROM outbox WHERE id > ? ORDER BY id LIMIT ?"
        return self.raw.execute(sql, (after_id, limit)).fetchall()

    def groups_of(self, keys: Sequence[tuple[str, str]]) -> list[list[PendingRow]]:
        """All pending rows of these orders, one list per order (parts in name order, as ``scan`` gives
        them), in the order the keys were given."""
        found: dict[tuple[str, str], list[PendingRow]] = {k: [] for k in keys}
        for row in sorted(map(PendingRow._make, self._by_order(PENDING_COLUMNS, "outbox", found, " AND NOT held")), key=lambda r: r.part):
            found[(row.slug, row.order_key)].append(row)
        return [rows for rows in found.values() if rows]

    def mark_delivered(self, rows: Iterable[PendingRow], now: float) -> int:
        """Karla acknowledged these rows: remember their hashes and drop them from the outbox.

        A row replaced by a newer version while the request was in flight keeps the newer version pending
        (the DELETE matches on the hash that was sent).
        """
        rows = list(rows)
        for chunk in chunks(rows, ROWS_PER_STATEMENT):
            # One statement per chunk rather than executemany: SQLite runs it in one call, so the GIL is
            # released and re-taken once, not per row, while the sender thread is busy with HTTP.
            values = ",".join(["(?,?,?,?,?,?)"] * len(chunk))
            self.raw.execute(
                f"INSERT INTO delivered (slug, order_key, part, hash, version, delivered_at) VALUES {values}"
                " ON CONFLICT(slug, order_key, part) DO UPDATE SET hash=excluded.hash, version=excluded.version,"
                " delivered_at=excluded.delivered_at",
                [v for r in chunk for v in (r.slug, r.order_key, r.part, r.hash, r.version, now)],
            )
            sent = ",".join(["(?,?)"] * len(chunk))
            self.raw.execute(
                f"DELETE FROM outbox WHERE id IN (SELECT o.id FROM (VALUES {sent}) AS v"
                " JOIN outbox AS o ON o.id = v.column1 AND o.hash = v.column2)",
                [v for r in chunk for v in (r.id, r.hash)],
            )
        return len(rows)

    def drop_acknowledged(self) -> int:
        """Remove pending rows equal to what Karla acknowledged for their part: nothing to send.

        A re-read replays older versions (a full sync reads a folder's files oldest first): the older one is
        queued, then the newest, equal to what Karla has, replaces it. Only safe while no batch is on the
        wire (an older version in flight would, once acknowledged, leave Karla with it and nothing queued),
        and only because a request that ended without an answer forgets its parts' acknowledged versions
        (``forget_acknowledged``), and a process killed before an answer left its parts on ``on_wire``,
        forgotten here first: Karla may hold what it sent.
        """
        self._recover_on_wire()
        result = self.conn.exec_driver_sql(
            "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox AS o JOIN delivered AS d"
            " ON d.slug = o.slug AND d.order_key = o.order_key AND d.part = o.part AND d.hash = o.hash)"
        )
        return int(result.rowcount or 0)

    def note_on_wire(self, rows: Iterable[PendingRow], answered: Sequence[int] = ()) -> int:
        """Before a request: write its parts down (and drop the notes of requests answered since). A process
        killed before the answer leaves the note behind for ``drop_acknowledged``; returns its id."""
        self.answered(answered)
        parts = json.dumps([(r.slug, r.order_key, r.part) for r in rows], separators=(",", ":"))
        return int(self.raw.execute("INSERT INTO on_wire (parts) VALUES (?)", (parts,)).lastrowid)

    def answered(self, notes: Sequence[int]) -> None:
        """These requests' answers are recorded (or they never reached Karla): their notes go."""
        for chunk in chunks(notes, KEYS_PER_LOOKUP):
            self.raw.execute(f"DELETE FROM on_wire WHERE id IN ({','.join(['?'] * len(chunk))})", tuple(chunk))

    def _recover_on_wire(self) -> None:
        """Requests of a process that ended before their answers: Karla may have stored them. Only parts
        that still wait matter: one no longer waiting was recorded since (a later drain's answer, the very
        answer of a process killed before it dropped its note), and what was recorded stands."""
        notes = self.raw.execute("SELECT parts FROM on_wire").fetchall()
        if notes:
            parts = {tuple(part) for (parts,) in notes for part in json.loads(parts)}
            waiting = self._by_order("slug, order_key, part", "outbox", {(slug, key) for slug, key, _ in parts})
            self._forget(ident for ident in map(tuple, waiting) if ident in parts)
            self.raw.execute("DELETE FROM on_wire")

    def withdraw(self, listed: dict[tuple[str, str], set[str]]) -> list[tuple[str, str, str]]:
        """Tracking parts of these orders that their source no longer lists (``listed``: (slug, order_key) ->
        the parts it does): a waiting one is dropped, and one Karla has is forgotten and returned, so that it
        is reported once (and sent again should it come back)."""
        gone: list[tuple[str, str, str]] = []
        for table in ("outbox", "delivered"):
            rows = self._by_order("slug, order_key, part", table, listed, " AND part LIKE 'tracking:%'")
            found = [(slug, key, part) for slug, key, part in rows if part not in listed[(slug, key)]]
            self.raw.executemany(f"DELETE FROM {table} WHERE slug = ? AND order_key = ? AND part = ?", found)
            gone = found
        return gone

    def release_held(self, source: str) -> int:
        """A full sync of ``source`` has read everything: what it queued (the newest versions now) may go."""
        return int(self.conn.exec_driver_sql("UPDATE outbox SET held = 0 WHERE source = ? AND held", (source,)).rowcount or 0)

    def forget_acknowledged(self, rows: Iterable[PendingRow]) -> None:
        """The parts of these rows have no trusted acknowledged version any more (a request for them ended
        without an answer): ``drop_acknowledged`` and change detection must not rely on the old one."""
        self._forget((r.slug, r.order_key, r.part) for r in rows)

    def _forget(self, parts: Iterable[tuple[str, str, str]]) -> None:
        """Forget which version Karla acknowledged for these (slug, order_key, part): the part looks changed
        and goes again. Its ``version`` stays: Karla holds that one or a newer, never an older, so a re-read
        must still not send an older one (deleting the row made the part look never sent at all)."""
        self.raw.executemany("UPDATE delivered SET hash = '' WHERE slug = ? AND order_key = ? AND part = ?", parts)

    def postpone(self, rows: Iterable[PendingRow], until: float, error: str) -> None:
        self.conn.exec_driver_sql(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ? AND hash = ?",
            [(until, error, r.id, r.hash) for r in rows],
        )

    def restart_wait(self, rows: Iterable[PendingRow], now: float) -> None:
        """Count these rows' wait from ``now`` (``first_enqueued_at``: what ``unknown_order_max_age_hours`` and
        ``failing_order_max_age_hours`` measure): they wait afresh, for an order Karla refused just now or for
        Karla failing on them alone for the first time, however long they were queued before."""
        self.conn.exec_driver_sql(
            "UPDATE outbox SET first_enqueued_at = ? WHERE id = ? AND hash = ?", [(now, r.id, r.hash) for r in rows]
        )

    def suspect(self, rows: Iterable[PendingRow], error: str) -> None:
        """Note a failure without delaying the rows (``error`` says which kind; delivery reads it back)."""
        self.conn.exec_driver_sql(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ? AND hash = ?",
            [(error, r.id, r.hash) for r in rows],
        )

    def note_refused(self, slug: str, note: str, mark: str) -> None:
        """Note why a shop's waiting orders do not go (``note``, starting with ``mark``) without delaying them or
        replacing a note of another kind (a suspect's); held rows wait for their full sync, not for this."""
        sql = ("UPDATE outbox SET last_error = ? WHERE slug = ? AND NOT held"
               " AND (last_error IS NULL OR substr(last_error, 1, ?) = ?)")
        self.raw.execute(sql, (note, slug, len(mark), mark))

    def remove(self, rows: Iterable[PendingRow]) -> None:
        self.conn.exec_driver_sql("DELETE FROM outbox WHERE id = ? AND hash = ?", [(r.id, r.hash) for r in rows])

    def forget_delivered(self, slug: str, order_key: str, part: str) -> None:
        """Make a part look never-sent (used when a dead letter is retried)."""
        self._forget([(slug, order_key, part)])
