"""What ``check`` says of a CSV source's folder: how many files each glob matches, which still settle, which
names do not sort by time, and which files both globs match (combined exports, read by both streams).

Apart from ``adapters.csv.adapter``, which decides what is read when: this only words it for the operator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from types import SimpleNamespace

from adapters.csv.config import CsvConfig
from adapters.csv.files import RemoteFile, name_order_warning, settling, unmatched_note

__all__ = ["folder_facts"]


def folder_facts(config: CsvConfig, source: str, listing: list[RemoteFile], globs: dict[str, str], now: float,
                 matches: Callable[[str, str], bool]) -> list[str]:
    facts: list[str] = []
    quiet = SimpleNamespace(info=lambda *args: None)
    empty = False
    for stream, pattern in globs.items():
        matching = [f for f in listing if matches(f.name, pattern)]
        empty = empty or not matching
        facts.append(f"{len(matching)} file(s) match {pattern!r} ({stream})")
        waiting = [f for f in matching if settling(f, now, config.settle_seconds, quiet)]
        if waiting:  # a file "not picked up" explains itself here too, not only in an INFO line
            last = max(f.mtime for f in waiting) + config.settle_seconds
            names = sorted(f.name for f in waiting)  # which file "was not picked up" is what the operator asks
            facts.append(f"{len(waiting)} of them changed within settle_seconds ({config.settle_seconds:.0f}s): "
                         f"read from {datetime.fromtimestamp(last, timezone.utc):%H:%M:%S} UTC on")
            facts.append(f"still settling: {_listed(names, 10)}")
        facts += name_order_warning([f.name for f in matching])
    facts += _both(listing, globs, matches)
    if empty:  # a glob matching nothing: name the exports it may have been meant for
        others = [f.name for f in listing if not any(matches(f.name, g) for g in globs.values())]
        facts += unmatched_note(others, source)
    return facts


def _both(listing: list[RemoteFile], globs: dict[str, str], matches: Callable[[str, str], bool]) -> list[str]:
    """Files both globs match are read by both streams (README: CSV files): said, so an overlap is no surprise."""
    names = sorted(f.name for f in listing if all(matches(f.name, g) for g in globs.values()))
    if not names:
        return []
    return [f"{len(names)} file(s) match both globs ({_listed(names, 5)}): each is read for its parcels and for its "
            "orders (a combined export; a stream whose required columns it lacks leaves it to the other), and is "
            "archived or deleted only once both have read it"]


def _listed(names: list[str], most: int) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
