"""What ``dlq retry`` reads again, told to the engine: which records a re-read is for.

Apart from the engine so that ``connector.dlq`` builds it without the engine's internals, and the engine
applies it (``commit_page``) without knowing about dead letters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from adapters.base import Page, Record
from state import DeadLetters, origin
from state.parts import KEYS_PER_LOOKUP, chunks

__all__ = ["Replay"]

Letter = tuple[int, str | None, str | None]  # (letter id, file, order key; None: every order of the file)


@dataclass(frozen=True)
class Replay:
    """What ``dlq retry`` reads again: these files, for the orders their letters name (``(file, key)``), or
    every order of a file with a letter that names none (a row without its order number). Records of other
    files (new ones, arrived meanwhile) are a plain read.

    With ``letters``, each page first checks, in its own transaction, that they are still there: the records
    of a letter `dlq drop` took meanwhile are left out (neither sent nor a letter again), and ``dropped`` says
    which; ``cleared`` holds those the re-read's own pages cleared (read cleanly), which are not dropped."""

    orders: frozenset[tuple[str | None, str]]
    whole: frozenset[str | None]
    streams: frozenset[str] = frozenset()  # read from their start (their files read before are skipped)
    letters: tuple[Letter, ...] = ()
    dropped: set[int] = field(default_factory=set, compare=False)
    cleared: set[int] = field(default_factory=set, compare=False)
    siblings: set[tuple[str | None, str]] = field(default_factory=set, compare=False)  # ``page_for`` fills it
    _looked: list[bool] = field(default_factory=list, compare=False, repr=False)

    @cached_property
    def files(self) -> frozenset[str | None]:
        """Read again though read before: the engine tells the adapter so (``AdapterContext.is_seen``),
        nothing is forgotten in the state file, so a retry killed halfway leaves nothing to undo."""
        return frozenset(file for file, _ in self.orders) | self.whole

    def replays(self, record: Record) -> bool:
        return origin(record.location) in self.files

    def wants(self, record: Record) -> bool:
        where = origin(record.location)
        return (where, record.key) in self.orders or where in self.whole or (where, record.key) in self.siblings

    def page_for(self, conn: Any, page: Page) -> tuple[Page, set[int]]:
        """The page without the records (and rejected rows) only letters dropped meanwhile asked for, and the
        letters of it still there, to ``settle`` after the page's writes. Only letters the page may concern
        (its orders, or a whole file of it) are looked up: one file's thousands of bad rows are many pages."""
        if not self._looked:
            self._looked.append(True)
            self.siblings.update(_siblings(conn, self.letters))
        keys = {str(r.key) for r in [*page.records, *page.rejected] if r.key is not None} | set(map(str, page.skipped))
        files = {origin(r.location) for r in [*page.records, *page.rejected]}
        settled = self.cleared | self.dropped
        mine = [i for i, file, key in self.letters if i not in settled and (key in keys if key else file in files)]
        present = _present(conn, mine)
        self.dropped.update(set(mine) - present)
        if not self.dropped:
            return page, present
        skip = self._asked_only_by_dropped()
        return replace(page, records=[r for r in page.records if not skip(r.location, r.key)],
                       rejected=[r for r in page.rejected if not skip(r.location, r.key)]), present

    def settle(self, conn: Any, present: set[int]) -> None:
        """After the page's writes, in its transaction: the letters it cleared are the re-read's doing."""
        self.cleared.update(present - _present(conn, sorted(present)))

    def _asked_only_by_dropped(self) -> Callable[[str | None, Any], bool]:
        live = {(file, key) for i, file, key in self.letters if i not in self.dropped}
        gone = {(file, key) for i, file, key in self.letters if i in self.dropped}

        def skip(location: str | None, key: Any) -> bool:
            mine = {(origin(location), None if key is None else str(key)), (origin(location), None)}
            return bool(mine & gone) and not mine & live

        return skip


def _siblings(conn: Any, letters: tuple[Letter, ...]) -> set[tuple[str | None, str]]:
    """The orders of the other letters at the row of a letter retried: a broken row (lines an unbalanced quote
    joined) names several orders, a letter each, and the merchant retrying the one they read expects all of
    them sent. One pass over the source letters, not one query per letter."""
    asked = {i for i, _, key in letters if key}
    if not asked:
        return set()
    sql = "SELECT id, location, order_key FROM dead_letter WHERE stage = 'source' AND order_key IS NOT NULL"
    rows = conn.exec_driver_sql(sql).fetchall()
    at = {where for i, where, _ in rows if i in asked and where}
    return {(origin(where), key) for _, where, key in rows if where in at}


def _present(conn: Any, ids: list[int]) -> set[int]:
    return {row.id for chunk in chunks(ids, KEYS_PER_LOOKUP) for row in DeadLetters(conn).list(list(chunk))}
