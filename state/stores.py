"""Small stores: cursors and dead letters (files seen: ``state.files``; runs: ``state.runs``). Each method runs in
the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from state.files import Files
from state.letter_match import clears, origin
from state.parts import KEYS_PER_LOOKUP, chunks

__all__ = ["Cursors", "DeadLetters", "DeadLetterRow", "Files", "origin"]


class Cursors:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, source: str, stream: str) -> str | None:
        sql = "SELECT value FROM cursor WHERE source = ? AND stream = ?"
        return self.conn.exec_driver_sql(sql, (source, stream)).scalar()

    def set(self, source: str, stream: str, value: str | None, now: float) -> None:
        self.conn.exec_driver_sql(
            "INSERT INTO cursor (source, stream, value, updated_at) VALUES (?,?,?,?)"
            " ON CONFLICT(source, stream) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
            (source, stream, value, now),
        )

    def all(self, source: str) -> dict[str, str | None]:
        sql = "SELECT stream, value FROM cursor WHERE source = ? ORDER BY stream"
        return dict(self.conn.exec_driver_sql(sql, (source,)).all())


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    id: int
    created_at: float
    stage: str
    source: str
    stream: str | None
    slug: str | None
    order_key: str | None
    id_type: str | None
    location: str | None
    reason: str
    details: Any
    payload: Any
    versions: Any = None  # a Karla letter's part -> version (``Part.version``), for ``dlq retry`` to queue it with


_SQLITE_INT = (-(2**63), 2**63 - 1)


def _storable(ids: Sequence[int]) -> list[int]:
    """The ids SQLite can hold: a mistyped `dlq drop 99999999999999999999` names no letter, and binding it
    would fail with OverflowError (exit 4, "internal error") instead of "no dead letter with id"."""
    return [i for i in ids if _SQLITE_INT[0] <= i <= _SQLITE_INT[1]]


_DLQ_COLUMNS = "id, created_at, stage, source, stream, slug, order_key, id_type, location, reason, details, payload, versions"


class DeadLetters:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, rows: Sequence[dict[str, Any]]) -> int:
        """Each row: stage, source, reason and optionally stream, slug, order_key, id_type, location, details, payload.

        A letter for a record already stored as a letter (the same row at the same place read again, or the
        same item refused again: a full sync, a file read again from its start) is refreshed in place,
        keeping its id: one bad record is one letter. Returns how many letters are new."""
        return len(self.add_new(rows))

    def add_new(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """As ``add``, returning the positions in ``rows`` of the letters inserted (not refreshed): a warning
        names those, not the page's old letters a re-read only refreshed. Each row refreshes one letter: the
        one with its reason, else one whose reason changed (two letters of one row, a parcel each, must not
        both take the last one's reason)."""
        claimed: set[int] = set()
        found = [self._letter(r, claimed, same_reason=True) for r in rows]
        found = [i if i is not None else self._letter(r, claimed, same_reason=False) for i, r in zip(found, rows)]
        for letter, r in zip(found, rows):
            if letter is not None:
                self.conn.exec_driver_sql(
                    "UPDATE dead_letter SET created_at = ?, reason = ?, details = ?, versions = ? WHERE id = ?",
                    (r["created_at"], r["reason"], _json(r.get("details")), _json(r.get("versions")), letter),
                )
        fresh = [i for i, letter in enumerate(found) if letter is None]
        rows = [rows[i] for i in fresh]
        if not rows:
            return []
        self.conn.exec_driver_sql(
            f"INSERT INTO dead_letter ({_DLQ_COLUMNS[4:]}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    r["created_at"], r["stage"], r["source"], r.get("stream"), r.get("slug"), r.get("order_key"),
                    r.get("id_type"), r.get("location"), r["reason"], _json(r.get("details")), _json(r.get("payload")),
                    _json(r.get("versions")),
                )
                for r in rows
            ],
        )
        return fresh

    def _letter(self, r: dict[str, Any], claimed: set[int], same_reason: bool) -> int | None:
        """The id of a standing letter of ``r``'s record (same stage, source, stream, order, location and raw
        payload; with ``same_reason`` the same reason too) not ``claimed`` by another row yet, now claimed."""
        sql = ("SELECT id FROM dead_letter WHERE stage = ? AND source = ? AND stream IS ? AND order_key IS ?"
               " AND location IS ? AND payload IS ?" + (" AND reason = ?" if same_reason else "") + " ORDER BY id")
        params = (r["stage"], r["source"], r.get("stream"), r.get("order_key"), r.get("location"), _json(r.get("payload")))
        for (letter,) in self.conn.exec_driver_sql(sql, (*params, r["reason"]) if same_reason else params):
            if letter not in claimed:
                claimed.add(letter)
                return int(letter)
        return None

    def list(self, ids: Sequence[int] | None = None, limit: int | None = None) -> list[DeadLetterRow]:
        sql = f"SELECT {_DLQ_COLUMNS} FROM dead_letter"
        params: tuple = ()
        if ids:
            ids = _storable(ids)
            if not ids:  # ids were named, none can exist: not "no filter", which would list every letter
                return []
            sql += f" WHERE id IN ({','.join('?' * len(ids))})"
            params = tuple(ids)
        sql += " ORDER BY id" + (f" LIMIT {int(limit)}" if limit else "")
        return [_row(r) for r in self.conn.exec_driver_sql(sql, params)]

    def of_order(self, stage: str, slug: str | None, order_key: str | None) -> list[DeadLetterRow]:
        sql = f"SELECT {_DLQ_COLUMNS} FROM dead_letter WHERE stage = ? AND slug IS ? AND order_key IS ? ORDER BY id"
        return [_row(r) for r in self.conn.exec_driver_sql(sql, (stage, slug, order_key))]

    def never_came(self, orders: Iterable[tuple[str, str]], key: str) -> list[DeadLetterRow]:
        """Karla's letters of these (slug, order_key) orders whose parts gave up waiting for their order (``details``
        is ``{"key": key}``, Karla's ``order_not_found``), newest first: what goes again once the order is read."""
        by_slug: dict[str, set[str]] = {}
        for slug, order_key in orders:
            by_slug.setdefault(slug, set()).add(order_key)
        found: list[DeadLetterRow] = []
        for slug, keys in by_slug.items():
            for chunk in chunks(sorted(keys), KEYS_PER_LOOKUP):
                sql = (f"SELECT {_DLQ_COLUMNS} FROM dead_letter WHERE stage = 'karla' AND slug = ?"
                       f" AND order_key IN ({','.join('?' * len(chunk))})")
                rows = map(_row, self.conn.exec_driver_sql(sql, (slug, *chunk)))
                found += [row for row in rows if row.details == {"key": key}]
        return sorted(found, key=lambda row: (row.created_at, row.id), reverse=True)

    def delete(self, ids: Sequence[int]) -> int:
        ids = _storable(ids)
        if not ids:
            return 0
        sql = f"DELETE FROM dead_letter WHERE id IN ({','.join('?' * len(ids))})"
        return int(self.conn.exec_driver_sql(sql, tuple(ids)).rowcount or 0)

    def count(self) -> int:
        return int(self.conn.exec_driver_sql("SELECT COUNT(*) FROM dead_letter").scalar() or 0)

    def has_source_letters(self, source: str) -> bool:
        sql = "SELECT 1 FROM dead_letter WHERE source = ? AND stage = 'source' LIMIT 1"
        return self.conn.exec_driver_sql(sql, (source,)).first() is not None

    def resolve(self, source: str, stream: str, read: Iterable[tuple[str, str | None, frozenset[str] | None, bool]],
                before: float) -> int:
        """Drop the source's letters for records that have now been read cleanly from the same origin.

        ``read`` holds (order key, origin, parcels, by name) tuples; an origin is a file name
        (``orders_001.csv``) or, for sources without files, the whole location. Matching the origin keeps a
        letter for rows of a file that was never fixed when the same order number reads cleanly from another
        file, unless that file sorts after the letter's and the source versions records by file name (``by
        name``): then the later file's order is the newer one (an order is one snapshot per file), and the
        letter of the older is obsolete. A record with an order vouches for the whole order (``parcels``
        None); one with only trackings vouches for those tracking numbers alone: its letter is cleared only
        if the letter's raw record names one of them (``state.letter_match``: nested values too). Daily
        exports reuse a file name, and tomorrow's clean parcel must not clear today's bad one.
        """
        wanted: dict[str, list[tuple[str | None, frozenset[str] | None, bool]]] = {}
        for key, where, parcels, by_name in read:  # an order's parcels may each be a record (CSV: each its line)
            wanted.setdefault(key, []).append((where, parcels, by_name))
        if not wanted:
            return 0
        found = []
        for chunk in chunks(sorted(wanted), KEYS_PER_LOOKUP):
            sql = (
                "SELECT id, order_key, location, payload FROM dead_letter WHERE stage = 'source' AND source = ?"
                f" AND stream = ? AND created_at < ? AND order_key IN ({','.join('?' * len(chunk))})"
            )
            for letter, key, location, payload in self.conn.exec_driver_sql(sql, (source, stream, before, *chunk)):
                if any(clears(location, payload, *vouch) for vouch in wanted[key]):
                    found.append(letter)
        return self.delete(found)

    def drop_from_files(self, source: str, stream: str, rows: Iterable[tuple[str, str]]) -> int:
        """Drop the source's letters of these (order key, file) pairs, whatever their line: a later file's
        version of the order went or waits, so the older file's bad row is obsolete (``connector.pages``)."""
        wanted = set(rows)
        found = []
        for chunk in chunks(sorted({key for key, _ in wanted}), KEYS_PER_LOOKUP):
            sql = ("SELECT id, order_key, location FROM dead_letter WHERE stage = 'source' AND source = ? AND stream = ?"
                   f" AND order_key IN ({','.join('?' * len(chunk))})")
            letters = self.conn.exec_driver_sql(sql, (source, stream, *chunk))
            found += [letter for letter, key, location in letters if (key, origin(location)) in wanted]
        return self.delete(found)

    def source_letters_since(self, source: str, since: float) -> int:
        """The source's letters written (or refreshed) since ``since`` that still stand: what a run left."""
        sql = "SELECT COUNT(*) FROM dead_letter WHERE stage = 'source' AND source = ? AND created_at >= ?"
        return int(self.conn.exec_driver_sql(sql, (source, since)).scalar() or 0)

    def drop_skipped(self, source: str, stream: str, keys: Iterable[str], before: float) -> int:
        """Drop the source's letters for orders it now leaves out on purpose (``Page.skipped``): such an order
        never reads cleanly again, so its letter would stay for ever. Only the source's own letters, whatever
        their origin: what Karla refused was data Karla had, and stays until it is settled or dropped."""
        dropped = 0
        for chunk in chunks(sorted(set(keys)), KEYS_PER_LOOKUP):
            sql = (
                "DELETE FROM dead_letter WHERE stage = 'source' AND source = ? AND stream = ? AND created_at < ?"
                f" AND order_key IN ({','.join('?' * len(chunk))})"
            )
            dropped += int(self.conn.exec_driver_sql(sql, (source, stream, before, *chunk)).rowcount or 0)
        return dropped

    def has_karla_letters(self) -> bool:
        return self.conn.exec_driver_sql("SELECT 1 FROM dead_letter WHERE stage = 'karla' LIMIT 1").first() is not None

    def settle_delivered(self, slug: str, keys: Sequence[str]) -> int:
        """Drop Karla's letters for these orders once Karla acknowledged a newer version of every part the
        letter holds: the record was fixed at the source and went out, nothing of the letter is left to send.
        A letter with a part not delivered since (a parcel refused with its order, never read again) stays."""
        found = []
        for chunk in chunks(sorted(set(keys)), KEYS_PER_LOOKUP):
            sql = (
                "SELECT id, order_key, created_at, payload FROM dead_letter WHERE stage = 'karla' AND slug = ?"
                f" AND order_key IN ({','.join('?' * len(chunk))})"
            )
            for letter, key, created_at, payload in self.conn.exec_driver_sql(sql, (slug, *chunk)).all():
                sql = "SELECT part, delivered_at FROM delivered WHERE slug = ? AND order_key = ?"
                since = dict(self.conn.exec_driver_sql(sql, (slug, key)).all())
                parts = _item_parts(payload)
                if parts and all(since.get(part, 0.0) > created_at for part in parts):
                    found.append(letter)
        return self.delete(found)

    def count_by_source(self) -> dict[str, int]:
        return dict(self.conn.exec_driver_sql("SELECT source, COUNT(*) FROM dead_letter GROUP BY source").all())


def _json(value: Any) -> str | None:
    """``default=str``: an adapter's raw row may hold what a driver returns (datetime, Decimal, UUID); a
    payload that cannot be stored would fail the page's transaction and stop the source for good."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):  # keys of mixed types or not text, a cycle: keep the letter, as text
        return json.dumps(str(value), ensure_ascii=False)


def _item_parts(payload: str | None) -> set[str]:
    """The outbox parts a refused item was built from (``connector.items.Item``): its order, its trackings."""
    try:
        item = json.loads(payload) if payload else None
    except ValueError:
        return set()
    if not isinstance(item, dict):
        return set()
    trackings = item.get("trackings") or []
    return ({"order"} if item.get("order") else set()) | {f"tracking:{t.get('tracking_number')}" for t in trackings if isinstance(t, dict)}


def _row(raw: Sequence[Any]) -> DeadLetterRow:
    values = list(raw)
    for index in (10, 11, 12):
        if values[index]:
            try:
                values[index] = json.loads(values[index])
            except ValueError:
                pass
    return DeadLetterRow(*values)



from state.runs import Runs  # noqa: E402 - moved to state/runs.py; the old import path still works

__all__ += ["Runs"]
