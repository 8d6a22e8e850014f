"""A contract test kit for adapter authors: subclass ``AdapterContract`` in your own pytest suite.

    from adapters.testing import AdapterContract

    class TestMyAdapter(AdapterContract):
        def make_adapter(self, context):            # an adapter on good config and reachable test data
            return MyAdapter("test", MyAdapter.Config(type="my", ...), context)
        def make_bad_adapter(self, context):        # optional: wrong credentials -> check() raises ConfigError
            return MyAdapter("test", MyAdapter.Config(type="my", token="wrong"), context)
        secrets = ["the-good-token"]                # values that must never show in repr()
        expected = {"1001": {"order": {"order_number": "1001"}}}   # optional sample mapping (a subset)

The kit plays the engine's part: it reads every stream, keeps files reported done, and re-reads from the
cursor each page returned, so an adapter that passes here keeps the engine's guarantees.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from adapters.base import Adapter, AdapterContext, FileMark, Page, Record, StreamSpec
from connector.errors import ConfigError
from connector.karla.models import OrderPlacement, Tracking, dump

__all__ = ["AdapterContract", "read_all"]


def read_all(adapter: Adapter, stream: str, cursor: str | None = None) -> tuple[list[Page], str | None]:
    """Every page of one stream from ``cursor``, and the last cursor a page carried."""
    pages = list(adapter.read(stream, cursor))
    last = cursor
    for page in pages:
        if page.cursor is not None:
            last = page.cursor
    return pages, last


def _signature(record: Record) -> tuple[str, Any, Any]:
    order = dump(record.order) if record.order else None
    return record.key, repr(order), repr(sorted((dump(t) for t in record.trackings), key=repr))


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

    # -- plumbing ------------------------------------------------------------------------------------
    def _context(self, seen: set[tuple[str, int, float, str]] | None = None) -> AdapterContext:
        seen = seen if seen is not None else set()
        return AdapterContext(source="contract", is_seen=lambda m: (m.path, m.size, m.mtime, m.sha256) in seen)

    def _records(self, pages: list[Page]) -> Iterator[Record]:
        for page in pages:
            yield from page.records

    # -- the contract --------------------------------------------------------------------------------
    def test_type_and_config_are_declared(self) -> None:
        adapter = self.make_adapter(self._context())
        assert isinstance(type(adapter).type, str) and type(adapter).type
        assert "type" in type(adapter).Config.model_fields

    def test_check_succeeds_on_good_config(self) -> None:
        facts = self.make_adapter(self._context()).check()
        assert isinstance(facts, list) and all(isinstance(f, str) for f in facts)

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
        adapter = self.make_adapter(self._context())
        total = 0
        for spec in adapter.streams():
            pages, _ = read_all(adapter, spec.name)
            for record in self._records(pages):
                total += 1
                assert isinstance(record, Record) and record.key, record
                assert record.order is None or isinstance(record.order, OrderPlacement)
                assert all(isinstance(t, Tracking) for t in record.trackings)
                assert record.order is not None or record.trackings, f"record {record.key} carries nothing"
            for page in pages:
                assert all(r.location and r.reason for r in page.rejected), "a rejection must say where and why"
        assert total, "the test data should yield at least one record"

    def test_cursor_values_present_and_monotonic_when_sorted(self) -> None:
        adapter = self.make_adapter(self._context())
        for spec in adapter.streams():
            pages, _ = read_all(adapter, spec.name)
            cursors = [p.cursor for p in pages if p.records]
            assert all(c is not None for c in cursors) or any(p.done_files for p in pages), (
                f"stream {spec.name}: pages with records must carry a cursor (or finish files)"
            )
            if spec.is_sorted:
                values = [r.cursor for r in self._records(pages) if r.cursor is not None]
                assert values == sorted(values), f"stream {spec.name} is declared sorted but cursors decrease"

    def test_rereading_from_the_cursor_yields_nothing_new(self) -> None:
        seen: set[tuple[str, int, float, str]] = set()
        adapter = self.make_adapter(self._context(seen))
        for spec in adapter.streams():
            pages, cursor = read_all(adapter, spec.name)
            first = {_signature(r) for r in self._records(pages)}
            seen.update((m.path, m.size, m.mtime, m.sha256) for p in pages for m in p.done_files)
            again, _ = read_all(self.make_adapter(self._context(seen)), spec.name, cursor)
            new = {_signature(r) for r in self._records(again)} - first
            assert not new, f"stream {spec.name}: re-reading from the final cursor produced new records {sorted(new)[:3]}"

    def test_resuming_from_every_page_loses_nothing(self) -> None:
        adapter = self.make_adapter(self._context())
        for spec in adapter.streams():
            pages, _ = read_all(adapter, spec.name)
            everything = {_signature(r) for r in self._records(pages)}
            for index, page in enumerate(pages[:-1]):
                if page.cursor is None:
                    continue
                before = {_signature(r) for p in pages[: index + 1] for r in p.records}
                resumed, _ = read_all(self.make_adapter(self._context()), spec.name, page.cursor)
                after = {_signature(r) for r in self._records(resumed)}
                assert everything <= before | after, f"stream {spec.name}: resuming after page {index} lost records"

    def test_sample_record_mapping(self) -> None:
        if not self.expected:
            return
        adapter = self.make_adapter(self._context())
        found: dict[str, dict[str, Any]] = {}
        for spec in adapter.streams():
            for record in self._records(read_all(adapter, spec.name)[0]):
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


def _assert_subset(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            _assert_subset(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) >= len(expected), f"{where}: {actual!r}"
        for index, value in enumerate(expected):
            _assert_subset(value, actual[index], f"{where}[{index}]")
    else:
        assert expected == actual, f"{where}: expected {expected!r}, got {actual!r}"


_ = FileMark  # re-exported type used in docstrings of the kit
