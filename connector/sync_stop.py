"""How `sync` and `dlq retry` end when told to stop (SIGTERM, Ctrl-C), kept apart from ``connector.commands``:
the signal handling is a piece of its own, and what the operator is told then must stay the same for both."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from connector.app import Connector
from connector.logs import printable
from state import Cursors, Outbox

__all__ = ["Stop", "Terminated", "cursors_now", "held_now", "interrupted", "retry_interrupted", "stopped"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (`systemctl stop`, a shutdown during the timer's run) ends `sync` where Ctrl-C would."""


class Stop:
    """SIGTERM stops `sync` as it stops the daemon: reading ends after the page in flight is committed and
    counted (``page``), the request on the wire is answered and recorded (the delivery process is told to stop,
    and ignores the signal itself; the in-process drain is aborted), retries end at once. Its default action
    killed the sync: no word, and the run recorded as read: 0. A second SIGTERM ends the process at once."""

    def __init__(self, connector: Connector) -> None:
        self.connector, self.asked = connector, False

    def __call__(self, _signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.asked = True
        self.connector.client  # noqa: B018 - created now if need be: a drain still to come must stop as well
        self.connector.abort()

    def page(self) -> None:
        if self.asked:
            raise Terminated("stopped by SIGTERM")

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # signal.signal works there only
            yield
            return
        previous = signal.signal(signal.SIGTERM, self)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)


def stopped(err: Console, connector: Connector, names: Sequence[str] | None, full: bool, *, sigterm: bool) -> int:
    """``interrupted`` told what the state file says now: what a full sync holds, which sources have a cursor."""
    if full:
        return interrupted(err, True, sigterm=sigterm, held=held_now(connector, names))
    return interrupted(err, False, sigterm=sigterm, stored=cursors_now(connector, names))


def interrupted(err: Console, full: bool, *, sigterm: bool, held: Mapping[str, int] | None = None,
                stored: Mapping[str, bool] | None = None) -> int:
    """Exit 130 for Ctrl-C, 143 (128 + SIGTERM, as a shell tells a process SIGTERM ended) for SIGTERM.
    ``held``: what a full sync's sources hold now, by source (``held_now``; None: unknown). Without it, a full
    sync stopped before it queued a change (a Shopify bulk operation still running) said its work was held.
    ``stored``: whether each source of the sync has stored a cursor (``cursors_now``; None: unknown). A stopped
    first read (a new install's Shopify bulk fill) said "the next sync resumes from there": it starts over."""
    how = " (SIGTERM)" if sigterm else ""
    fresh = sorted(source for source, has in (stored or {}).items() if not has)
    if not full and fresh:
        rest = "; the other sources resume from there" if len(fresh) < len(stored or {}) else ""
        said = (f"interrupted{how}: what was read so far is queued and kept; the first read of {', '.join(fresh)} "
                f"starts again at the next sync (no resume point was stored yet){rest}")
    elif not full:
        said = f"interrupted{how}: what was read so far is queued and kept; the next sync resumes from there"
    elif held is None:
        said = (f"interrupted{how}: what this full sync queued is kept but held (it may hold older versions it "
                "replayed) until a full sync finishes: run sync --full again")
    elif not (by := {source: n for source, n in held.items() if n}):
        said = (f"interrupted{how}: what was read so far is queued and kept, none of it held; the rest was not "
                "read: run sync --full again to compare it")
    else:
        said = (f"interrupted{how}: {sum(by.values())} changed order(s) a full sync read are kept but held "
                f"({', '.join(f'{n} from {source}' for source, n in sorted(by.items()))}; they may be older "
                "versions than Karla's) until a full sync finishes: run sync --full again")
    err.print(f"{printable(said)} (karla-connector status shows what is pending)", highlight=False, markup=False)
    return 143 if sigterm else 130


def held_now(connector: Connector, names: Sequence[str] | None) -> dict[str, int] | None:
    """Orders held by full syncs of ``names`` (all sources: None), by source, for ``interrupted``: {} when the
    state file was never opened (stopped before reading: this run held nothing), None when it cannot be read
    (a message must not turn an interrupted sync into an internal error)."""
    db = getattr(connector, "_db", None)  # opened by this run, or not: opening it now could migrate it unlocked
    if db is None:
        return {}
    try:
        with db.read() as conn:
            held = Outbox(conn).held_by_source()
    except Exception:  # noqa: BLE001 - a locked or damaged file: the message without the count
        return None
    return {source: n for source, n in held.items() if names is None or source in names}


def cursors_now(connector: Connector, names: Sequence[str] | None) -> dict[str, bool] | None:
    """Whether each source of this sync (``names``; all enabled ones: None) has a cursor stored, for
    ``interrupted``. None when unknown: the state file never opened by this run (opening it now could migrate it
    unlocked) or unreadable (a message must not turn an interrupted sync into an internal error)."""
    db = getattr(connector, "_db", None)
    if db is None:
        return None
    chosen = list(names) if names else [name for name, rt in connector.sources.items() if rt.config.enabled]
    try:
        with db.read() as conn:
            cursors = Cursors(conn)
            return {name: any(value is not None for value in cursors.all(name).values()) for name in chosen}
    except Exception:  # noqa: BLE001 - a locked or damaged file: the message without it
        return None


def retry_interrupted(err: Console, *, sigterm: bool) -> int:
    """`dlq retry` stopped as `sync` is: what it read or queued again is kept, the letters not cleared stay."""
    how = " (SIGTERM)" if sigterm else ""
    err.print(f"interrupted{how}: what was read or queued again so far is kept (the next sync delivers it); letters "
              "not cleared yet stay: run dlq retry again (karla-connector status shows what is pending)",
              highlight=False)
    return 143 if sigterm else 130
