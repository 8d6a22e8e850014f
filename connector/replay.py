"""What ``dlq retry`` reads again, told to the engine: which records a re-read is for.

Apart from the engine so that ``connector.dlq`` builds it without the engine's internals, and the engine
applies it (``commit_page``) without knowing about dead letters.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def replays(self, record: Record) -> bool:
        return origin(record.location) in {file for file, _ in self.orders} | self.whole

    def wants(self, record: Record) -> bool:
        return (origin(record.location), record.key) in self.orders or origin(record.location) in self.whole
