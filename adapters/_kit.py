"""The contract kit's private machinery (``adapters.testing`` is the public face): how a run's records and
rejections are compared across runs, what the engine's state database would hold, and the checks on a
plugin's declared type and on ``Rejected.raw``. Nothing here is API: authors import from ``adapters.testing``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from adapters.base import FileMark, Page, Record, Rejected, SourceConfig
from connector.karla.models import dump


# What a run produced, comparable across runs: (stream, "record", key, content) or (stream, "rejection",
# location, key). A rejection's reason may be worded differently on a re-read; where and which order not.
Item = tuple[str, str, str, str]


def _record_item(stream: str, record: Record) -> Item:
    order = dump(record.order) if record.order else None
    trackings = sorted((dump(t) for t in record.trackings), key=repr)
    return stream, "record", str(record.key), repr((order, trackings))


def _rejection_item(stream: str, rejected: Rejected) -> Item:
    return stream, "rejection", str(rejected.location), "" if rejected.key is None else str(rejected.key)


def _items(committed: list[tuple[str, Page]], *, rejections: bool = True) -> set[Item]:
    """Every record (and rejection) of a run; the kit's crash and re-read checks compare these sets."""
    found = {_record_item(stream, r) for stream, page in committed for r in page.records}
    if rejections:
        found |= {_rejection_item(stream, r) for stream, page in committed for r in page.rejected}
    return found


def _record_counts(committed: list[tuple[str, Page]]) -> Counter[str]:
    return Counter(stream for stream, page in committed for _ in page.records)


def _check_raw(rejected: Rejected) -> None:
    """The dead-letter store keeps ``raw`` as JSON (values it cannot encode as their ``str()``)."""
    if rejected.raw is None:
        return
    assert isinstance(rejected.raw, Mapping), f"{rejected.location}: Rejected.raw must be a Mapping, not {type(rejected.raw).__name__}"
    try:
        json.dumps(dict(rejected.raw), sort_keys=True, default=str)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{rejected.location}: Rejected.raw must be JSON-like (str keys): {exc}") from None


def _describe(items: set[Item]) -> str:
    """``3 record(s) (orders:4, ...)`` and/or ``1 rejection(s) (orders:erp://orders/2)``, for messages."""
    parts = []
    for kind in ("record", "rejection"):
        names = sorted({f"{stream}:{name}" for stream, k, name, _ in items if k == kind})
        if names:
            parts.append(f"{len(names)} {kind}(s) ({', '.join(names[:5])})")
    return " and ".join(parts)


def _file_key(mark: FileMark) -> tuple[str, int, float, str]:
    return mark.path, mark.size, mark.mtime, mark.sha256


def _type_problem(cls: Any) -> str | None:
    """Why ``connector.registry.load_adapter`` would call the plugin broken though its runs are fine, or None.

    Users write ``type = "<cls.type>"`` in ``[sources.NAME]`` and the registry validates that value with the
    Config's ``type`` field exactly like this: a Literal that disagrees with ``cls.type`` skips every source.
    """
    config, type_ = getattr(cls, "Config", None), getattr(cls, "type", None)
    if not (isinstance(type_, str) and type_):
        return "the class must declare type = \"...\" (the entry-point name users write as type)"
    if not (isinstance(config, type) and issubclass(config, SourceConfig)):
        return "Config must be a subclass of adapters.base.SourceConfig"
    annotation = config.model_fields["type"].annotation
    try:
        TypeAdapter(annotation).validate_python(type_)
    except ValidationError:
        return (f"its Config ({config.__name__}) does not accept type = {type_!r} (its type field is {annotation!r}); "
                "karla-connector adapters would report the plugin as broken and skip its sources")
    return None


@dataclass
class _Committed:
    """What the engine's state database would hold for the source: a cursor per stream, the files done."""

    cursors: dict[str, str] = field(default_factory=dict)
    seen: dict[tuple[str, int, float, str], FileMark] = field(default_factory=dict)

    def commit(self, stream: str, page: Page, *, full: bool = False) -> None:
        # connector.engine.commit_page: the finished files always, the cursor when the page carries one
        # and the run is not a full sync.
        self.seen.update((_file_key(m), m) for m in page.done_files)
        if page.cursor is not None and not full:
            self.cursors[stream] = page.cursor


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
