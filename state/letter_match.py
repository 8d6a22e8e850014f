"""Whether a record read cleanly clears a source's dead letter: where the letter came from (its origin) and
which parcels its raw record names.

Apart from the dead-letter store (``state.stores``) because the engine asks the same question of a page's
own rejections before they are stored (``connector.page_letters``): one rule, in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["clears", "origin", "raw_values"]

_DEPTH = 4  # levels of a raw record walked: an API's shipment JSON nests its tracking code a level or two down
_VALUES = 1000  # values collected at most: a letter's raw may be a whole order with hundreds of lines


def origin(location: str | None) -> str | None:
    """Where a record came from, without its line: ``orders_001.csv:17`` → ``orders_001.csv``."""
    path, _, line = (location or "").rpartition(":")
    return path if path and line.isdigit() else location


def clears(location: str | None, raw: Any, where: str | None, parcels: frozenset[str] | None, by_name: bool) -> bool:
    """Whether a record read cleanly (``DeadLetters.resolve``'s tuple) clears the letter at ``location``
    whose raw record is ``raw`` (the stored JSON text, or the adapter's mapping)."""
    older = by_name and parcels is None and where is not None and (origin(location) or "") < where
    if older:
        return True
    if origin(location) != where:
        return False
    return parcels is None or bool(parcels & raw_values(json_value(raw) if isinstance(raw, str) else raw))


def json_value(payload: str | None) -> Any:
    try:
        return json.loads(payload) if payload else None
    except ValueError:
        return None


def raw_values(raw: Any) -> set[str]:
    """The scalar values of a letter's raw record as text, nested ones too (a CSV row is flat; an API's JSON
    is not: ``{"tracking": {"code": "T9"}}``). Bounded in depth and count: asked per letter a clean parcel
    might clear."""
    found: set[str] = set()
    level = [raw] if isinstance(raw, Mapping) else []
    for _ in range(_DEPTH):
        deeper: list[Any] = []
        for item in level:
            for value in item.values() if isinstance(item, Mapping) else item:
                if isinstance(value, (Mapping, list, tuple)):
                    deeper.append(value)
                elif value is not None and not isinstance(value, bool):
                    found.add(str(value))
                if len(found) >= _VALUES:
                    return found
        level = deeper
    return found
