"""The sync loop: the only place a cursor moves.

For each page an adapter yields, the page's records are split into parts (the order object, each
tracking), compared with what Karla already acknowledged, and the new or changed parts are written to
the outbox in the same transaction that stores the page's cursor, its dead letters and its finished
files. A crash between pages therefore resumes from the last committed page and loses nothing. That
transaction, and what it makes of a page, is ``connector.pages``; this module reads the pages and records
the run.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import NoneType
from typing import Any

from adapters.base import Adapter, AdapterContext, FileMark, Page, Record, Rejected, SourceConfig, StreamSpec
from connector.errors import Aborted, ConnectorError
from connector.job_errors import Episodes, is_state_trouble, state_message
from connector.karla.models import Tracking
from connector.logs import redact
from connector.pages import RunCounts, commit_page, digest, iter_parts, record_parts
from connector.replay import Replay
from state import Cursors, DeadLetters, Files, Outbox, Runs, StateDB

__all__ = ["RunCounts", "SourceRuntime", "close_adapter", "digest", "iter_parts", "record_parts", "source_log", "stream_specs",
           "sync_source"]

log = logging.getLogger("connector.sync")

# A plugin's close() failing alike every poll (the daemon builds an adapter per poll): said once while it lasts.
_closing = Episodes(log)


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
        started = now()
        run_id = runs.start(rt.name, "full" if full else "sync", started)
        resolve = DeadLetters(conn).has_source_letters(rt.name)
    again = replay.files if replay is not None else frozenset()
    was_read = _WasRead(db, rt.name, again)
    context = AdapterContext(
        source=rt.name, clock=clock, log=source_log(rt), is_seen=_is_seen(db, rt.name, again), was_read=was_read,
        full_sync=full, dry_run=dry_run,
        stop=abort or threading.Event(), shop_slug=rt.slug,
    )
    adapter: Any = None
    try:
        adapter = rt.adapter_cls(rt.name, rt.config, context)  # inside: a failing constructor is a failed run
        specs = stream_specs(rt, adapter.streams())
        last = -math.inf  # the time of the run's last page
        for number, spec in enumerate(specs, start=1):
            if on_stream:
                on_stream(spec.name, number == len(specs))
            with db.read() as conn:
                restart = full or (replay is not None and spec.name in replay.streams)
                cursor = None if restart else Cursors(conn).get(rt.name, spec.name)
            for page in _pages(rt, spec.name, adapter.read(spec.name, cursor)):
                _check_page(rt, spec.name, page)
                # Letters are dated by their page, and a page clears only older ones: its time must pass the last
                # page's (a clock stepped back, or one too coarse to move, kept a corrected order's letter).
                at = last = max(now(), math.nextafter(last, math.inf))
                started = min(started, at)  # a clock stepped back must not hide this run's letters either
                counts = commit_page(db, rt, spec.name, page, full=full, now=at, resolve=resolve, replay=replay,
                                     complete=spec.complete_trackings, dry_run=dry_run)
                was_read.noted(page.done_files)
                resolve = resolve or counts.rejected > 0  # a later page (a newer export) may clear this run's letters
                _add(total, counts)
                if on_page:
                    on_page(counts)
                if stop and stop():
                    _finish(db, run_id, "stopped", _standing(db, rt.name, total, started), now(), held_by=held_by)
                    return total
    except Aborted:  # asked to stop while the source was being retried: nothing of that page was committed
        _finish(db, run_id, "stopped", _standing(db, rt.name, total, started), now(), held_by=held_by)
        return total
    except (ConnectorError, OSError) as exc:
        _finish(db, run_id, "failed", total, now(), error=redact(str(exc)), held_by=held_by)  # `status` shows it: no secret
        raise
    except KeyboardInterrupt:  # Ctrl-C, or `sync`'s SIGTERM after a committed page: stopped, as the daemon's stop is
        _finish(db, run_id, "stopped", _standing(db, rt.name, total, started), now(), held_by=held_by)
        raise
    except BaseException as exc:  # bugs: record the run as failed, then propagate
        # the state file's own trouble (full, locked by another process) in SQLite's words, not SQLAlchemy's
        error = state_message(db.path, exc) if is_state_trouble(exc) else repr(exc)
        _finish(db, run_id, "failed", total, now(), error=redact(error), held_by=held_by)
        raise
    finally:
        close_adapter(rt, adapter, once=True)
    _finish(db, run_id, "ok", _standing(db, rt.name, total, started), now(), held_by=held_by)
    older = f", {total.superseded} superseded by the version Karla has or that waits (not queued)" if total.superseded else ""
    # an idle poll (nothing queued, refused or withdrawn; a shop's lookback re-reads unchanged orders): not a
    # line per poll, forever
    quiet = not (total.enqueued or total.rejected or total.withdrawn)
    log.log(
        logging.DEBUG if quiet else logging.INFO,
        "source %s: read %d records (orders or their parcels), %d parts %s, %d unchanged, %d rejected%s",
        rt.name, total.read, total.enqueued, "would be queued (dry run)" if dry_run else "queued", total.unchanged,
        total.rejected, older, extra={"source": rt.name},
    )
    return total


def source_log(rt: SourceRuntime) -> logging.LoggerAdapter:
    """The logger lent to an adapter (``AdapterContext.log``): its lines name the source, as the docs promise."""
    return logging.LoggerAdapter(logging.getLogger(f"adapters.{rt.config.type}"), {"source": rt.name})


def close_adapter(rt: SourceRuntime, adapter: Any, *, once: bool = False) -> None:
    """Call the adapter's optional ``close()``. A failure there is a WARNING, never the run's result: it must not
    leave the run unfinished, hide the error that ended it or keep a full sync's changes held. ``once`` (each read,
    which the daemon repeats every poll): the same failure is a WARNING once, then DEBUG, and an INFO once close()
    works again; not ~1,440 warnings a day at poll_interval = 60."""
    close = getattr(adapter, "close", None) if adapter is not None else None
    if not callable(close):
        return
    key = f"close {rt.name}" if once else None
    try:
        close()
    except Exception as exc:  # noqa: BLE001 - a plugin's cleanup; what it read is committed either way
        text = (f"source {rt.name}: the {rt.config.type} adapter's close() failed: {type(exc).__name__}: {exc}; the "
                "run's result stands (a connection may be left open until the process ends)")
        _closing.tell(key, logging.WARNING, text, extra={"source": rt.name})
        return
    if key and _closing.over(key):
        log.info("source %s: the %s adapter's close() works again", rt.name, rt.config.type, extra={"source": rt.name})


def stream_specs(rt: SourceRuntime, streams: Any) -> list[StreamSpec]:
    """``streams()``, checked (by ``check`` too): none at all made every sync read nothing and succeed, silently."""
    specs = list(streams)
    for spec in specs:
        if not isinstance(spec, StreamSpec):
            raise TypeError(f"source {rt.name}: the {rt.config.type} adapter's streams() must return "
                            f"adapters.base.StreamSpec objects, not {type(spec).__name__} ({spec!r})")
    if not specs:
        raise TypeError(f"source {rt.name}: the {rt.config.type} adapter's streams() returned no stream, so nothing "
                        "would ever be read: it must return at least one adapters.base.StreamSpec")
    return specs


def _pages(rt: SourceRuntime, stream: str, pages: Any) -> Iterable[Any]:
    """``read()``'s result: a plain function that forgot to return its pages gave None, and a TypeError naming
    neither the adapter nor the stream."""
    if not hasattr(pages, "__iter__"):
        raise TypeError(f"source {rt.name}: the {rt.config.type} adapter's read({stream!r}) returned "
                        f"{type(pages).__name__}, not an iterator of adapters.base.Page (yield the pages)")
    return pages


def _check_page(rt: SourceRuntime, stream: str, page: Any) -> None:
    """What ``read`` yields, checked where the message can name the adapter: a dict in ``records`` would fail
    deep in the page's transaction as an ``AttributeError`` naming neither (one test a record: cheap)."""
    where = f"source {rt.name}: the {rt.config.type} adapter's read({stream!r})"
    if not isinstance(page, Page):
        raise TypeError(f"{where} yielded {type(page).__name__}, not an adapters.base.Page")
    for name, kind, items in (("records", Record, page.records), ("rejected", Rejected, page.rejected)):
        wrong = next((item for item in items if not isinstance(item, kind)), None)
        if wrong is not None:
            raise TypeError(f"{where}: Page.{name} holds a {type(wrong).__name__}, not an adapters.base.{kind.__name__} "
                            f"({repr(wrong)[:80]}; build it with {kind.__name__}(...))")
    for record in page.records:  # a list of dicts passes Record's fast path and failed deep in the transaction
        for tracking in record.trackings:  # (plain loops: no generator a record, 100k records a full sync)
            if not isinstance(tracking, Tracking):
                raise TypeError(f"{where}: Record {record.key!r} ({record.location or 'no location'}): trackings holds "
                                f"a {type(tracking).__name__}, not a connector.karla.Tracking (Tracking.model_validate(...))")
    mark = next((m for m in page.done_files if not isinstance(m, FileMark)), None)
    if mark is not None:
        raise TypeError(f"{where}: Page.done_files holds a {type(mark).__name__} ({repr(mark)[:80]}), not an "
                        "adapters.base.FileMark(path, size, mtime, sha256)")
    if any(not (type(r.location) is type(r.reason) is str and isinstance(r.raw, (Mapping, NoneType))) for r in page.rejected):
        page.rejected = [_stored_as_text(r) for r in page.rejected]


def _stored_as_text(rejected: Rejected) -> Rejected:
    """A rejection as the dead-letter store keeps it: an exception as ``reason``, a ``Path`` as ``location`` and
    a line or a list as ``raw`` failed the page's transaction, and so every run after it, at the same cursor.
    Here, not in ``Rejected``: the contract kit still tells the adapter's author (``adapters.testing``)."""
    raw = rejected.raw
    if raw is not None and not isinstance(raw, Mapping):  # "non-JSON values inside raw are kept" as text
        raw = {"raw": list(raw) if isinstance(raw, (list, tuple)) else str(raw)}
    return replace(rejected, location=str(rejected.location), reason=str(rejected.reason), raw=raw)


def _standing(db: StateDB, source: str, total: RunCounts, since: float) -> RunCounts:
    """``total`` with as rejected only the letters the run leaves standing: a newer export read later in the
    run made the others obsolete (``since``: the earliest time a page of the run was dated)."""
    if total.rejected:
        with db.read() as conn:
            total.rejected = min(total.rejected, DeadLetters(conn).source_letters_since(source, since))
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
