"""A contract test kit for adapter authors: subclass ``AdapterContract`` in your own pytest suite.

    from adapters.testing import AdapterContract

    class TestMyAdapter(AdapterContract):
        def make_adapter(self, context):            # an adapter on good config and reachable test data
            return MyAdapter("test", MyAdapter.Config(type="my", ...), context)
        def make_bad_adapter(self, context):        # optional: wrong credentials -> check() raises ConfigError
            return MyAdapter("test", MyAdapter.Config(type="my", token="wrong"), context)
        def make_changing_adapter(self, context):   # optional: configured to archive/delete/acknowledge
            return MyAdapter("test", MyAdapter.Config(type="my", after_read="archive"), context)
        secrets = ["the-good-token"]                # values that must never show in repr()
        expected = {"1001": {"order": {"order_number": "1001"}}}   # optional sample mapping (a subset)

The kit plays the engine's part (``connector.engine.sync_source``): it reads the streams in order, each from
its committed cursor, and commits every page (its finished files and its cursor) before it asks for the
next one. To prove that a crash loses nothing it stops such a run after each page in turn, as if the
process had died there, and starts a new adapter on what was committed: the cursors and ``is_seen`` for
the files finished so far. What was committed plus what the resumed run reads must hold every record and
every rejection (by location and key) an uninterrupted run reads: a rejection the adapter holds back for
a later page is a dead letter the engine never stores. Cursors are opaque: the kit never compares them.

A second run from the committed cursors must read nothing new, and fewer records than the first (an
adapter that ignores its cursor re-reads everything at every poll). It also runs a full sync
(``context.full_sync``, cursor None) after an incremental run, which must read every record again, and a
dry run (``context.dry_run``), after which the source must read as before.

Pass ``context`` on to your adapter, and use a small page size in ``make_adapter``: the test data must
yield at least two pages, or resuming would not be tested.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

from adapters._kit import _assert_subset, _check_raw, _Committed, _describe, _file_key, _items, _record_counts, _type_problem
from adapters.base import Adapter, AdapterContext, FileMark, Page, Record, Rejected, StreamSpec
from connector.errors import ConfigError
from connector.karla.models import OrderPlacement, Tracking, dump

__all__ = ["AdapterContract", "read_all"]

MAX_PAGES = 10_000  # one run of the test data yielding more is taken as a read that never ends

MakeAdapter = Callable[[AdapterContext], Adapter]


def read_all(adapter: Adapter, stream: str, cursor: str | None = None) -> tuple[list[Page], str | None]:
    """Every page of one stream from ``cursor``, and the last cursor a page carried."""
    pages = list(adapter.read(stream, cursor))
    return pages, next((p.cursor for p in reversed(pages) if p.cursor is not None), cursor)


class AdapterContract:
    """Mixin of ``test_*`` methods; pytest collects them on your subclass."""

    secrets: ClassVar[list[str]] = []
    expected: ClassVar[dict[str, dict[str, Any]]] = {}

    # -- hooks for the author ------------------------------------------------------------------------
    def make_adapter(self, context: AdapterContext) -> Adapter:
        raise NotImplementedError("return your adapter built on good config and test data")

    def make_bad_adapter(self, context: AdapterContext) -> Adapter | None:
        """Return an adapter with bad credentials, or None when the source has none."""
        return None

    def make_changing_adapter(self, context: AdapterContext) -> Adapter | None:
        """Return an adapter on the same test data configured to change the source once it has read it, as
        in production (archive or delete files, acknowledge messages, mark orders exported), or None.

        The kit runs it only as a dry run, which must change nothing, so the other tests can keep a
        ``make_adapter`` that leaves the test data in place. None: the dry run uses ``make_adapter``."""
        return None

    # -- plumbing ------------------------------------------------------------------------------------
    def _context(self, seen: dict[tuple[str, int, float, str], FileMark] | None = None, *,
                 full_sync: bool = False, dry_run: bool = False) -> AdapterContext:
        seen = seen if seen is not None else {}
        return AdapterContext(source="contract", is_seen=lambda m: seen.get(_file_key(m)), full_sync=full_sync, dry_run=dry_run,
                              was_read=lambda path, size, mtime: next((m for k, m in seen.items() if k[:3] == (path, size, mtime)), None))

    def _sync(self, state: _Committed, crash_after: int | None = None, *, full: bool = False, dry_run: bool = False,
              make: MakeAdapter | None = None) -> list[tuple[str, Page]]:
        """One run as the engine does it; returns the committed (stream, page) pairs in order.

        ``is_seen`` reads ``state`` live, so a file finished on a committed page is already "seen" when the
        adapter asks about it later in the same run, as with the engine. ``crash_after=k``: the process
        dies right after committing page ``k`` (0-based, counted over all streams). ``full``: every stream
        from cursor None, and no cursor is stored. ``dry_run``: the engine commits to a copy of its state.
        """
        adapter = (make or self.make_adapter)(self._context(state.seen, full_sync=full, dry_run=dry_run))
        committed: list[tuple[str, Page]] = []
        try:
            for spec in adapter.streams():
                pages = adapter.read(spec.name, None if full else state.cursors.get(spec.name))
                try:
                    for page in pages:
                        assert isinstance(page, Page), f"stream {spec.name}: read() yielded {page!r}, not a Page"
                        state.commit(spec.name, page, full=full)
                        committed.append((spec.name, page))
                        if crash_after is not None and len(committed) > crash_after:
                            return committed
                        assert len(committed) <= MAX_PAGES, f"stream {spec.name}: read() did not end after {MAX_PAGES} pages"
                finally:
                    close_pages = getattr(pages, "close", None)
                    if callable(close_pages):
                        close_pages()
        finally:
            close = getattr(adapter, "close", None)  # the engine calls it after every run
            if callable(close):
                close()
        return committed

    # -- the contract --------------------------------------------------------------------------------
    def test_type_and_config_are_declared(self) -> None:
        problem = _type_problem(type(self.make_adapter(self._context())))
        assert problem is None, problem

    def test_check_succeeds_on_good_config(self) -> None:
        facts = self.make_adapter(self._context()).check()
        assert isinstance(facts, list) and all(isinstance(f, str) for f in facts), (
            f"check() must return a list of str, not {facts!r} (a str prints one letter a line)")

    def test_check_fails_on_bad_credentials(self) -> None:
        bad = self.make_bad_adapter(self._context())
        if bad is None:
            return
        try:
            bad.check()
        except ConfigError:
            return
        raise AssertionError("check() with bad credentials must raise connector.errors.ConfigError")

    def test_streams_are_declared(self) -> None:
        streams = self.make_adapter(self._context()).streams()
        assert streams and all(isinstance(s, StreamSpec) for s in streams)
        assert len({s.name for s in streams}) == len(streams), "stream names must be unique"

    def test_pages_hold_valid_karla_records(self) -> None:
        committed = self._sync(_Committed())
        total = 0
        for stream, page in committed:
            assert page.cursor is None or isinstance(page.cursor, str), f"stream {stream}: a cursor must be a str"
            assert all(isinstance(m, FileMark) for m in page.done_files), f"stream {stream}: done_files holds FileMarks"
            for record in page.records:
                total += 1
                assert isinstance(record, Record) and record.key, record
                assert isinstance(record.key, str), f"record {record.key!r}: Record.key must be a str (or int, made a str)"
                assert record.order is None or isinstance(record.order, OrderPlacement)
                assert all(isinstance(t, Tracking) for t in record.trackings)
                assert record.order is not None or record.trackings, f"record {record.key} carries nothing"
            for rejected in page.rejected:
                assert isinstance(rejected, Rejected), f"stream {stream}: page.rejected holds {rejected!r}"
                assert rejected.location and rejected.reason, "a rejection must say where and why"
                assert isinstance(rejected.location, str) and isinstance(rejected.reason, str), (
                    f"{rejected.location}: Rejected.location and reason must be str (a message, not the exception)")
                assert rejected.key is None or isinstance(rejected.key, str), f"{rejected.location}: Rejected.key must be a str"
                _check_raw(rejected)
        assert total, "the test data should yield at least one record"

    def test_streams_record_progress(self) -> None:
        """A stream that yields records must checkpoint: some page carries a cursor or finishes files, or
        every poll reads the whole source again. A page may leave the cursor out (the engine keeps the
        previous one). The kit never compares cursor values: they are opaque strings (``"10"`` after
        ``"9"`` is fine); what counts is that resuming from them loses nothing (tested below)."""
        committed = self._sync(_Committed())
        for spec in self.make_adapter(self._context()).streams():
            pages = [page for stream, page in committed if stream == spec.name]
            if any(p.records for p in pages):
                assert any(p.cursor is not None or p.done_files for p in pages), (
                    f"stream {spec.name}: no page carries a cursor or finishes a file, so every run re-reads it all"
                )

    def test_rereading_from_the_cursor_yields_nothing_new(self) -> None:
        """A second run from what the first committed reads nothing new, and fewer records per stream (of
        two or more): an adapter that ignores its cursor re-reads the whole source at every poll."""
        state = _Committed()
        first_run, second_run = self._sync(state), self._sync(state)
        new = _items(second_run) - _items(first_run)
        assert not new, f"a second run from the committed cursors produced new {_describe(new)}"
        first, second = _record_counts(first_run), _record_counts(second_run)
        for stream, count in first.items():
            assert count < 2 or second.get(stream, 0) < count, (
                f"stream {stream}: a run from the committed cursors and files read all {count} records again, as if "
                "read() ignored its cursor (or is_seen). Read only what comes after it. An inclusive timestamp cursor "
                "re-emits only the records of the cursor's instant: give the test data more than one timestamp."
            )

    def test_resuming_after_a_crash_at_every_page_loses_nothing(self) -> None:
        baseline = self._sync(_Committed())
        per_stream = dict(Counter(stream for stream, _ in baseline))
        assert len(baseline) >= 2, (
            f"the test data yields {len(baseline)} page(s) in all ({per_stream or 'no stream yields any'}): resuming "
            "after a crash is not tested. Give make_adapter a smaller page size or more test data."
        )
        everything = _items(baseline)
        for crash in range(len(baseline) - 1):
            state = _Committed()
            before = self._sync(state, crash_after=crash)
            cursors, seen = dict(state.cursors), sorted(path for path, *_ in state.seen)
            lost = everything - _items(before) - _items(self._sync(state))
            if lost:
                stream = before[-1][0]
                index = sum(1 for s, _ in before if s == stream) - 1
                raise AssertionError(
                    f"a crash after page {index} of stream {stream} loses {_describe(lost)}: the run resumed from "
                    f"cursors {cursors} with files done {seen} and never read them again. A page's cursor (and "
                    "done_files) must only cover records and rejections on that page or earlier ones: put a "
                    "Rejected on the page of its row, not on a later one."
                )

    def test_a_full_sync_reads_everything_again(self) -> None:
        """After an incremental run has committed its cursors and files, a full sync (cursor None,
        ``context.full_sync``) must read every record again: it must ignore ``is_seen``, ``was_read`` and any
        other shortcut. Rejections are not required again: their dead letters are stored already."""
        state = _Committed()
        everything = _items(self._sync(state), rejections=False)
        missed = everything - _items(self._sync(state, full=True), rejections=False)
        assert not missed, (
            f"a full sync after an incremental run misses {_describe(missed)}: with context.full_sync set, read "
            "everything since full_sync_since (or the initial start) and ignore is_seen, was_read and other shortcuts"
        )

    def test_a_dry_run_changes_nothing_at_the_source(self) -> None:
        """``sync --dry-run`` reads as usual but must not archive, move or delete files, acknowledge messages
        or mark orders exported: a normal run after it reads the same records and rejections."""
        def make(context: AdapterContext) -> Adapter:
            return self.make_changing_adapter(context) or self.make_adapter(context)

        dry = _items(self._sync(_Committed(), dry_run=True, make=make))
        after = _items(self._sync(_Committed()))
        gone = dry - after
        assert not gone, (
            f"a dry run changed the source: a run after it no longer reads {_describe(gone)}. With context.dry_run "
            "set, read as usual but archive, move or delete no file, acknowledge or mark nothing"
        )
        missed = after - dry
        assert not missed, f"a dry run must read what a normal run reads; it missed {_describe(missed)}"

    def test_sample_record_mapping(self) -> None:
        if not self.expected:
            return
        found: dict[str, dict[str, Any]] = {}
        for record in (r for _, page in self._sync(_Committed()) for r in page.records):
            entry = found.setdefault(record.key, {"trackings": []})
            if record.order:
                entry["order"] = dump(record.order)
            entry["trackings"] += [dump(t) for t in record.trackings]
        for key, subset in self.expected.items():
            assert key in found, f"record {key} not read"
            _assert_subset(subset, found[key], key)

    def test_secrets_not_in_repr(self) -> None:
        adapter = self.make_adapter(self._context())
        config = getattr(adapter, "config", None)
        for text in (repr(adapter), str(adapter), repr(config), str(config)):
            for secret in self.secrets:
                assert secret not in text, "a secret shows in repr()/str()"
