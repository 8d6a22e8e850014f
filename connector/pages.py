"""What one page of a source becomes, in one transaction: its records split into parts (the order object,
each tracking) and queued where they changed, its rejected records as dead letters, its finished files and
its cursor.

Apart from the sync loop (``connector.engine``, which re-exports these names) because this is the one
place state changes for what a source read, with rules of its own (re-reads, replays, withdrawn parcels,
letters a clean record clears); the loop only orders pages and records the run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

from adapters.base import Page, Record
from connector.karla.models import OrderPlacement, Tracking, merge_trackings, serialise
from connector.logs import redact
from connector.page_letters import tell_obsolete, warn_letters, write_letters
from connector.refusals import NOT_FOUND
from connector.replay import Replay
from state import Cursors, DeadLetterRow, DeadLetters, EnqueueCounts, Files, Outbox, Part, StateDB, origin
from state.parts import VERSION_SEP

if TYPE_CHECKING:
    from connector.engine import SourceRuntime

__all__ = ["RunCounts", "commit_page", "digest", "iter_parts", "letter_parts", "record_parts", "requeue_letter"]

log = logging.getLogger("connector.sync")


@dataclass(slots=True)
class RunCounts:
    read: int = 0
    enqueued: int = 0
    unchanged: int = 0
    rejected: int = 0
    delivered: int = 0
    dead: int = 0
    new_letters: int = 0  # rejected records not already letters (a re-read refreshes its letter in place)
    superseded: int = 0  # parts a re-read did not queue: Karla's version or the waiting one is newer (as far as known)
    withdrawn: int = 0  # parcels Karla has that the source no longer lists (``StreamSpec.complete_trackings``)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


def digest(payload: str) -> str:
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def record_parts(record: Record, source: str, stream: str, slug: str) -> list[Part]:
    """Split a record into its order part and one part per tracking number (trackings sharing one merged)."""
    slug = record.shop_slug or slug
    version = None if record.version is None else VERSION_SEP.join((source, stream, str(record.version)))
    pieces: dict[str, str] = {}
    if record.order is not None:
        pieces["order"] = serialise(record.order)
    for tracking in merge_trackings(record.trackings):
        pieces[f"tracking:{tracking.tracking_number}"] = serialise(tracking)
    return [
        Part(slug, record.key, record.id_type, name, payload, digest(payload), source, stream, record.location, version)
        for name, payload in pieces.items()
    ]


def iter_parts(records: Iterable[Record], source: str, stream: str, slug: str) -> Iterable[Part]:
    for record in records:
        yield from record_parts(record, source, stream, slug)


def commit_page(
    db: StateDB, rt: SourceRuntime, stream: str, page: Page, *, full: bool, now: float, resolve: bool = False,
    replay: Replay | None = None, complete: bool = False, dry_run: bool = False,
) -> RunCounts:
    """One transaction: outbox parts, dead letters, finished files and the cursor (``dry_run``: of a throw-away
    copy of the state file, which the warnings say).

    With ``resolve`` (the source has letters of its own), a record that now reads cleanly from the same
    file (or shop order) clears its earlier letter: the dead-letter store lists what is still wrong. So does an
    order the source now leaves out on purpose (``Page.skipped``: cancelled, a pickup), as it never reads cleanly.
    A letter that names no order (a header, a row without its order number) is not cleared here: a clean read
    of a file of that name may be the next export, not the fix (``dlq retry`` clears it, ``connector.dlq``).
    A full sync, and a ``replay`` (dead letters' files read again, ``Replay``), may read older versions than
    Karla's: those are skipped or held (``Outbox.enqueue``); so a bad row of an order whose later file's
    version Karla has or that waits leaves no letter, and drops its file's old one. The page's letters are
    stored before its clean records clear older ones (``connector.page_letters``): a letter read again is
    refreshed in place, and one beside a clean read of its order on the same page stands.
    """
    if page.cursor is not None and not isinstance(page.cursor, str):
        raise TypeError(f"source {rt.name}: the adapter's Page.cursor must be a str (json.dumps a structure), "
                        f"not {type(page.cursor).__name__}")
    counts = RunCounts(read=len(page.records), rejected=len(page.rejected))
    with db.transaction() as conn:
        present = None
        if replay is not None and replay.letters:  # `dlq retry`: rows of letters `dlq drop` took meanwhile stay out
            page, present = replay.page_for(conn, page)
        enq = _enqueue(conn, rt, stream, page.records, now, full, replay)
        _parcels_follow(conn, page.records, rt.slug, now)
        withdrawn = Outbox(conn).withdraw(_listed(page.records, rt.slug)) if complete else []
        letters = write_letters(conn, rt, stream, page, now, resolve)
        if page.done_files:
            Files(conn).mark_seen(rt.name, page.done_files, now)
        if page.cursor is not None and not full:
            Cursors(conn).set(rt.name, stream, page.cursor, now)
        if replay is not None and present:
            replay.settle(conn, present)
    counts.enqueued, counts.unchanged, counts.superseded = enq.enqueued, enq.unchanged, enq.superseded
    counts.rejected, counts.new_letters = len(letters.standing), len(letters.fresh)
    if letters.obsolete:
        tell_obsolete(rt.name, letters.obsolete, letters.dropped)
    if letters.fresh:
        warn_letters(rt.name, letters.fresh, len(letters.standing) - len(letters.fresh), dry_run)
    counts.withdrawn = len(withdrawn)
    _warn_withdrawn(rt.name, withdrawn)
    return counts


def _enqueue(conn: Any, rt: SourceRuntime, stream: str, records: list[Record], now: float, full: bool,
             replay: Replay | None) -> EnqueueCounts:
    """The page's parts into the outbox: a replay's records of its letters' files as a re-read for them;
    records of a file read to its end before (a file rewritten, say to fix a row) as a re-read, which sends
    no version older than Karla's; the rest (all of them, mostly) as read."""
    outbox, groups = Outbox(conn), _by_reading(conn, rt.name, records, replay)
    counts = EnqueueCounts()
    for (kind, group) in groups.items():
        if group:
            wanted = {(r.shop_slug or rt.slug, r.key) for r in group if replay.wants(r)} if kind == "replay" and replay else None
            more = outbox.enqueue(list(iter_parts(group, rt.name, stream, rt.slug)), now, held=full, replay=wanted,
                                  reread=kind == "rewritten")
            counts = EnqueueCounts(*(a + b for a, b in zip(astuple(counts), astuple(more))))
    return counts


def _parcels_follow(conn: Any, records: list[Record], slug: str, now: float) -> None:
    """An order read cleanly takes along its parcels that gave up waiting for it (``Refusals._never_came``'s
    letters), in the page's transaction: queued again as `dlq retry` queues them, they go with the order (a late
    file, a rejected row fixed), where the letter said so; a parcel changed since is not sent older."""
    letters = DeadLetters(conn)
    orders = {(r.shop_slug or slug, r.key) for r in records if r.order is not None}
    if not orders or not letters.has_karla_letters():
        return
    done = []
    for row in letters.never_came(orders, NOT_FOUND):  # newest first: an older letter's part is then superseded
        try:
            requeue_letter(conn, row, now)
        except ValueError as exc:  # stored by an older release, it no longer makes a record: `dlq retry` says so
            log.warning("dead letter %d of order %s is kept: %s", row.id, row.order_key, redact(str(exc)))
            continue
        done.append(row.id)
        log.info("order %s was read: its parcels that gave up waiting for it go with it (dead letter %d cleared)",
                 row.order_key, row.id, extra={"source": row.source})
    letters.delete(done)


def letter_parts(row: DeadLetterRow) -> list[Part]:
    """The outbox parts of a Karla letter's item, as a record is split. ``ValueError``: the stored item no longer
    makes a record (a letter of an older release, whose order's own id is not its key)."""
    item = row.payload if isinstance(row.payload, dict) else {}
    record = Record(
        key=row.order_key or "", id_type=row.id_type or "order_number", location=row.location,
        order=OrderPlacement.model_validate(item["order"]) if item.get("order") else None,
        trackings=[Tracking.model_validate(t) for t in item.get("trackings", [])],
    )
    versions = row.versions if isinstance(row.versions, dict) else {}  # as read: a re-read then compares with them
    return [p._replace(version=versions.get(p.part)) for p in record_parts(record, row.source, row.stream or "", row.slug or "")]


def requeue_letter(conn: Any, row: DeadLetterRow, now: float) -> bool:
    """Queue a Karla letter's item again; False when every part of it has a newer version since (one delivered
    or waiting, or held by a newer letter): sending the letter's would set Karla back. The letter stays: the
    caller drops it."""
    outbox = Outbox(conn)
    newer = _in_newer_letters(conn, row)
    parts = [p for p in letter_parts(row) if p.part not in newer and not outbox.changed_since(p, row.created_at)]
    for part in parts:
        outbox.forget_delivered(part.slug, part.order_key, part.part)
    outbox.enqueue(parts, now)
    return bool(parts)


def _in_newer_letters(conn: Any, row: DeadLetterRow) -> set[str]:
    """Parts of this order that a newer Karla letter holds: a newer version, refused too. Queuing this letter
    alone must not send its older version of them (retrying both sends the newer: newest first). Named from
    the stored item, not rebuilt as a record: a letter of an older release may no longer make one."""
    parts: set[str] = set()
    for other in DeadLetters(conn).of_order("karla", row.slug, row.order_key):
        item = other.payload if isinstance(other.payload, dict) else {}
        if (other.created_at, other.id) > (row.created_at, row.id):
            parts |= {"order"} if item.get("order") else set()
            parts |= {f"tracking:{t.get('tracking_number')}" for t in item.get("trackings") or [] if isinstance(t, dict)}
    return parts


def _by_reading(conn: Any, source: str, records: list[Record], replay: Replay | None) -> dict[str, list[Record]]:
    """Records by how they are read: ``replay`` (``dlq retry``'s), ``rewritten`` (from a file of that name
    read to its end before; only where the source versions records by file name) or ``read``. A replayed file
    never read to its end (a sync stopped in it) is read whole: its other orders would never go otherwise."""
    groups: dict[str, list[Record]] = {"read": [], "rewritten": [], "replay": []}
    named = {where for r in records if r.version is not None and r.version == (where := origin(r.location))}
    before = {where for where in named if where is not None and Files(conn).has(source, where)}
    for record in records:
        where = origin(record.location)
        replayed = replay is not None and replay.replays(record) and (where in before or where not in named)
        kind = "replay" if replayed else "rewritten" if where in before else "read"
        groups[kind].append(record)
    return groups


def _warn_withdrawn(source: str, withdrawn: list[tuple[str, str, str]]) -> None:
    for slug, key, part in withdrawn:
        log.warning("source %s: order %s: parcel %s is in Karla (shop %s) but the source no longer lists it (a fulfilment "
                    "cancelled or a tracking number corrected); Karla keeps it as sent: remove it there if it is wrong",
                    source, key, part.removeprefix("tracking:"), slug, extra={"source": source})


def _listed(records: Iterable[Record], slug: str) -> dict[tuple[str, str], set[str]]:
    """The tracking parts each record carrying its order lists: all its order's live parcels."""
    listed: dict[tuple[str, str], set[str]] = {}
    for record in records:
        if record.order is not None:
            parts = listed.setdefault((record.shop_slug or slug, record.key), set())
            parts |= {f"tracking:{t.tracking_number}" for t in record.trackings}
    return listed
