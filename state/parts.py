"""The shapes the outbox is written and read in, and how versions of a part compare.

Apart from ``outbox.py`` so that its SQL reads on its own; the tuples are built by the thousand per page
and per batch, hence NamedTuples rather than models.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "EnqueueCounts", "KEYS_PER_LOOKUP", "PENDING_COLUMNS", "ROWS_PER_STATEMENT", "Part", "PendingRow", "VERSION_SEP", "chunks",
    "comparable", "older",
]

KEYS_PER_LOOKUP = 900  # order keys per IN-list query (change detection; dead letters read cleanly again)
ROWS_PER_STATEMENT = 1000  # six parameters per row, within SQLite's default limit of 32766


class Part(NamedTuple):
    """One deliverable piece of an order, serialised once (``payload`` is JSON text)."""

    slug: str
    order_key: str
    id_type: str
    part: str
    payload: str
    hash: str
    source: str
    stream: str
    location: str | None
    version: str | None = None  # source, stream and the record's version (``Record.version``); None: unknown


@dataclass(slots=True)
class EnqueueCounts:
    enqueued: int = 0
    unchanged: int = 0
    superseded: int = 0  # a re-read's versions not queued: the one Karla has or that waits is newer (as far as known)


class PendingRow(NamedTuple):
    """A row of the outbox as delivery needs it (a tuple: built by the thousand per batch)."""

    id: int
    slug: str
    order_key: str
    id_type: str
    part: str
    payload: bytes  # UTF-8, as stored (``PENDING_COLUMNS``): delivery joins it into a request unchanged
    hash: str
    source: str
    stream: str
    location: str | None
    first_enqueued_at: float
    attempts: int
    next_attempt_at: float
    error: str | None = None  # why the last attempt failed (``postpone``, ``suspect``)
    version: str | None = None


PENDING_COLUMNS = (
    "id, slug, order_key, id_type, part, CAST(payload AS BLOB), hash, source, stream, location, first_enqueued_at, attempts,"
    " next_attempt_at, last_error, version"
)
VERSION_SEP = "\x1f"  # between source, stream and the record's version in ``Part.version``


def comparable(version: str | None, other: str | None) -> bool:
    """Only versions read from the same source and stream say which is newer."""
    return version is not None and other is not None and version.rpartition(VERSION_SEP)[0] == other.rpartition(VERSION_SEP)[0]


def older(version: str | None, than: str | None) -> bool:
    return comparable(version, than) and version < than  # type: ignore[operator]


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
