"""The sync loop: the only place a cursor moves.

For each page an adapter yields, the page's records are split into parts (the order object, each
tracking), compared with what Karla already acknowledged, and the new or changed parts are written to
the outbox in the same transaction that stores the page's cursor, its dead letters and its finished
files. A crash between pages therefore resumes from the last committed page and loses nothing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, field
from typing import Any

from adapters.base import Adapter, AdapterContext, FileMark, Page, Record, SourceConfig
from connector.errors import Aborted, ConnectorError
from connector.karla.models import merge_trackings, serialise
from connector.logs import redact, redact_data
from state import Cursors, DeadLetters, EnqueueCounts, Files, Outbox, Part, Runs, StateDB, origin
from connector.replay import Replay
from state.parts import VERSION_SEP

__all__ = ["RunCounts", "SourceRuntime", "digest", "record_parts", "sync_source"]

_NAMED = 3  # dead letters named per page in the log

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


@dataclass(slots=True)
class SourceRuntime:
    """A configured source: its adapter class and validated config, plus the Karla shop it feeds."""

    name: str
    adapter_cls: type[Adapter]
    config: SourceConfig
    default_slug: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.config.shop_slug or self.default_slug


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


def _dead_rows(page: Page, source: str, stream: str, slug: str, now: float) -> list[dict[str, Any]]:
    return [
        {
            "created_at": now, "stage": "source", "source": source, "stream": stream, "slug": slug,
            "order_key": r.key, "location": r.location, "reason": redact(r.reason),  # `dlq list` shows it
            "payload": redact_data(dict(r.raw)) if r.raw is not None else None,  # an adapter's raw row may hold a secret
        }
        for r in page.rejected
    ]


def commit_page(
    db: StateDB, rt: SourceRuntime, stream: str, page: Page, *, full: bool, now: float, resolve: bool = False,
    replay: Replay | None = None, complete: bool = False,
) -> RunCounts:
    """One transaction: outbox parts, dead letters, finished files and the cursor.

    With ``resolve`` (the source has letters of its own), a record that now reads cleanly from the same
    file (or shop order) clears its earlier letter: the dead-letter store lists what is still wrong. So does an
    order the source now leaves out on purpose (``Page.skipped``: cancelled, a pickup), as it never reads cleanly.
    A full sync, and a ``replay`` (dead letters' files read again, ``Replay``), may read older versions than
    Karla's: those are skipped or held (``Outbox.enqueue``).
    """
    if page.cursor is not None and not isinstance(page.cursor, str):
        raise TypeError(f"source {rt.name}: the adapter's Page.cursor must be a str (json.dumps a structure), "
                        f"not {type(page.cursor).__name__}")
    counts = RunCounts(read=len(page.records), rejected=len(page.rejected))
    with db.transaction() as conn:
        enq = _enqueue(conn, rt, stream, page.records, now, full, replay)
        withdrawn = Outbox(conn).withdraw(_listed(page.records, rt.slug)) if complete else []
        letters = DeadLetters(conn)
        if resolve:
            letters.resolve(rt.name, stream, [_vouches(r) for r in page.records], before=now)
            letters.drop_skipped(rt.name, stream, [str(key) for key in page.skipped if key is not None], before=now)
        counts.new_letters = letters.add(_dead_rows(page, rt.name, stream, rt.slug, now))
        if page.done_files:
            Files(conn).mark_seen(rt.name, page.done_files, now)
        if page.cursor is not None and not full:
            Cursors(conn).set(rt.name, stream, page.cursor, now)
    counts.enqueued, counts.unchanged, counts.superseded = enq.enqueued, enq.unchanged, enq.superseded
    if counts.new_letters:
        _warn_letters(rt.name, page.rejected, counts.new_letters)
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


def _by_reading(conn: Any, source: str, records: list[Record], replay: Replay | None) -> dict[str, list[Record]]:
    """Records by how they are read: ``replay`` (``dlq retry``'s), ``rewritten`` (from a file of that name
    read to its end before; only where the source versions records by file name) or ``read``."""
    groups: dict[str, list[Record]] = {"read": [], "rewritten": [], "replay": []}
    named = {where for r in records if r.version is not None and r.version == (where := origin(r.location))}
    before = {where for where in named if where is not None and Files(conn).has(source, where)}
    for record in records:
        where = origin(record.location)
        kind = "replay" if replay is not None and replay.replays(record) else "rewritten" if where in before else "read"
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


def _warn_letters(source: str, rejected: list, new: int) -> None:
    """Bad input is the merchant's most common problem: say where, at WARNING (alerts, a quiet log level),
    not only in `dlq list`. The first few of a page are named; a whole bad file is one letter anyway."""
    named = "; ".join(f"{r.location}: {redact(r.reason)}" for r in rejected[:_NAMED])
    more = f" (and {len(rejected) - _NAMED} more)" if len(rejected) > _NAMED else ""
    log.warning("source %s: %d new dead letter(s): %s%s; `karla-connector dlq list` shows them", source, new, named, more,
                extra={"source": source})


def _vouches(record: Record) -> tuple[str, str | None, frozenset[str] | None, bool]:
    """What a record read cleanly clears letters for: its whole order, or only the parcels it carries; and
    whether its version is its file's name (then an earlier-named file's letter of the order is older)."""
    parcels = None if record.order is not None else frozenset(t.tracking_number for t in record.trackings)
    where = origin(record.location)
    return record.key, where, parcels, record.version is not None and record.version == where


def _is_seen(db: StateDB, source: str, again: frozenset[str | None] = frozenset()) -> Callable[[FileMark], FileMark | None]:
    def is_seen(mark: FileMark) -> FileMark | None:
        if mark.path in again:  # a replay's file: read again
            return None
        with db.read() as conn:
            found = Files(conn).is_seen(source, mark.path, mark.sha256)
        return None if found is None else FileMark(mark.path, found[0], found[1], mark.sha256, found[2])

    return is_seen


class _WasRead:
    """``AdapterContext.was_read`` for one run. The source's files read before are loaded at the first question
    (one query: asked per file, a poll over a folder of kept exports cost a query per file) and kept up to
    date with the files this run marks (``noted``), so the answers are the state file's."""

    def __init__(self, db: StateDB, source: str, again: frozenset[str | None] = frozenset()) -> None:
        self.db, self.source, self.again = db, source, again  # ``again``: a replay's files, read again
        self.known: dict[tuple[str, int, float], tuple[str, int]] | None = None

    def __call__(self, path: str, size: int, mtime: float) -> FileMark | None:
        if path in self.again:
            return None
        if self.known is None:
            with self.db.read() as conn:
                self.known = Files(conn).read_versions(self.source)
        found = self.known.get((path, size, mtime))
        return None if found is None else FileMark(path, size, mtime, *found)

    def noted(self, marks: Iterable[FileMark]) -> None:
        """Files a committed page marked read (``Files.mark_seen``): the latest read of their key now."""
        if self.known is not None:
            for m in marks:
                self.known[(m.path, m.size, m.mtime)] = (m.sha256, int(m.rejected or 0))


def sync_source(
    db: StateDB,
    rt: SourceRuntime,
    *,
    clock: Callable[[], Any],
    full: bool = False,
    on_page: Callable[[RunCounts], None] | None = None,
    stop: Callable[[], bool] | None = None,
    dry_run: bool = False,
    abort: threading.Event | None = None,
    on_stream: Callable[[str, bool], None] | None = None,
    replay: Replay | None = None,
) -> RunCounts:
    """Read every stream of one source into the outbox; returns the counts of this run.

    ``stop`` is polled after each committed page: a shutdown lets the page in flight finish, then ends
    the run cleanly (status ``stopped``) with the cursor at that page. ``abort`` is lent to the adapter
    (``AdapterContext.stop``) so a retry pause inside a page ends at once; that page is not committed.
    ``on_stream(name, last)`` is told before each stream is read (early delivery needs the last one).
    ``replay``: a read of what was read before (``dlq retry``), which sends only the records it names
    (their letters' orders) and must not send older versions.
    """
    total = RunCounts()
    now = lambda: clock().timestamp()  # noqa: E731
    held_by = rt.name if full else None  # what a full sync queues is held until it has read everything
    with db.transaction() as conn:
        runs = Runs(conn)
        runs.prune(rt.name, now() - Runs.KEEP_SECONDS)  # a bounded batch of the oldest: a run a poll, kept 30 days
        run_id = runs.start(rt.name, "full" if full else "sync", now())
        resolve = DeadLetters(conn).has_source_letters(rt.name)
    again = replay.files if replay is not None else frozenset()
    source_log = logging.LoggerAdapter(logging.getLogger(f"adapters.{rt.config.type}"), {"source": rt.name})
    was_read = _WasRead(db, rt.name, again)
    context = AdapterContext(
        source=rt.name, clock=clock, log=source_log, is_seen=_is_seen(db, rt.name, again), was_read=was_read,
        full_sync=full, dry_run=dry_run,
        stop=abort or threading.Event(),
    )
    adapter: Any = None
    try:
        adapter = rt.adapter_cls(rt.name, rt.config, context)  # inside: a failing constructor is a failed run
        specs = list(adapter.streams())
        for number, spec in enumerate(specs, start=1):
            if on_stream:
                on_stream(spec.name, number == len(specs))
            with db.read() as conn:
                restart = full or (replay is not None and spec.name in replay.streams)
                cursor = None if restart else Cursors(conn).get(rt.name, spec.name)
            for page in adapter.read(spec.name, cursor):
                counts = commit_page(db, rt, spec.name, page, full=full, now=now(), resolve=resolve, replay=replay,
                                     complete=spec.complete_trackings)
                was_read.noted(page.done_files)
                _add(total, counts)
                if on_page:
                    on_page(counts)
                if stop and stop():
                    _finish(db, run_id, "stopped", total, now(), held_by=held_by)
                    return total
    except Aborted:  # asked to stop while the source was being retried: nothing of that page was committed
        _finish(db, run_id, "stopped", total, now(), held_by=held_by)
        return total
    except (ConnectorError, OSError) as exc:
        _finish(db, run_id, "failed", total, now(), error=redact(str(exc)), held_by=held_by)  # `status` shows it: no secret
        raise
    except BaseException as exc:  # KeyboardInterrupt, bugs: record the run as failed, then propagate
        _finish(db, run_id, "failed", total, now(), error=redact(repr(exc)), held_by=held_by)
        raise
    finally:
        close = getattr(adapter, "close", None) if adapter is not None else None
        if callable(close):
            close()
    _finish(db, run_id, "ok", total, now(), held_by=held_by)
    older = f", {total.superseded} superseded by the version Karla has or that waits (not queued)" if total.superseded else ""
    # an idle poll (nothing queued, refused or withdrawn; a shop's lookback re-reads unchanged orders): not a
    # line per poll, forever
    quiet = not (total.enqueued or total.rejected or total.withdrawn)
    log.log(
        logging.DEBUG if quiet else logging.INFO,
        "source %s: read %d records (orders or their parcels), %d parts queued, %d unchanged, %d rejected%s",
        rt.name, total.read, total.enqueued, total.unchanged, total.rejected, older, extra={"source": rt.name},
    )
    return total


def _add(total: RunCounts, counts: RunCounts) -> None:
    for name in total.__slots__:  # type: ignore[attr-defined]
        setattr(total, name, getattr(total, name) + getattr(counts, name))


def _finish(
    db: StateDB, run_id: int, status: str, counts: RunCounts, now: float, error: str | None = None, held_by: str | None = None,
) -> None:
    """Record the run's end. A full sync of ``held_by`` lets go what it held once it has read everything (a dry
    run's state is a throw-away copy: released there too, so its preview shows them); one that did not
    finish says what it leaves held."""
    with db.transaction() as conn:
        Runs(conn).finish(run_id, status, counts.as_dict(), now, error)
        if held_by and status == "ok":
            Outbox(conn).release_held(held_by)
        held = Outbox(conn).held_count(held_by) if held_by and status != "ok" else 0
    if held:
        log.warning("full sync of %s did not finish (%s): %d changed order(s) it read wait until one does, as they "
                    "may be older versions than Karla's; `status` lists them", held_by, status, held, extra={"source": held_by})


def iter_parts(records: Iterable[Record], source: str, stream: str, slug: str) -> Iterable[Part]:
    for record in records:
        yield from record_parts(record, source, stream, slug)
