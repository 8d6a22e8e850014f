"""What ``dlq retry`` reads again, told to the engine: which records a re-read is for.

Apart from the engine so that ``connector.dlq`` builds it without the engine's internals, and the engine
applies it (``commit_page``) without knowing about dead letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from adapters.base import Record
from state import origin

__all__ = ["Replay"]


@dataclass(frozen=True)
class Replay:
    """What ``dlq retry`` reads again: these files, for the orders their letters name (``(file, key)``), or
    every order of a file with a letter that names none (a row without its order number). Records of other
    files (new ones, arrived meanwhile) are a plain read."""

    orders: frozenset[tuple[str | None, str]]
    whole: frozenset[str | None]
    streams: frozenset[str] = frozenset()  # read from their start (their files read before are skipped)

    @cached_property
    def files(self) -> frozenset[str | None]:
        """Read again though read before: the engine tells the adapter so (``AdapterContext.is_seen``),
        nothing is forgotten in the state file, so a retry killed halfway leaves nothing to undo."""
        return frozenset(file for file, _ in self.orders) | self.whole

    def replays(self, record: Record) -> bool:
        return origin(record.location) in self.files

    def wants(self, record: Record) -> bool:
        return (origin(record.location), record.key) in self.orders or origin(record.location) in self.whole
