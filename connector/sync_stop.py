"""How `sync` and `dlq retry` end when told to stop (SIGTERM, Ctrl-C), kept apart from ``connector.commands``:
the signal handling is a piece of its own, and what the operator is told then must stay the same for both."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from connector.app import Connector

__all__ = ["Stop", "Terminated", "interrupted", "retry_interrupted"]


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


def interrupted(err: Console, full: bool, *, sigterm: bool) -> int:
    """Exit 130 for Ctrl-C, 143 (128 + SIGTERM, as a shell tells a process SIGTERM ended) for SIGTERM."""
    how = " (SIGTERM)" if sigterm else ""
    said = (f"interrupted{how}: what this full sync queued is kept but held (it may hold older versions it "
            "replayed) until a full sync finishes: run sync --full again" if full else
            f"interrupted{how}: what was read so far is queued and kept; the next sync resumes from there")
    err.print(f"{said} (karla-connector status shows what is pending)", highlight=False)
    return 143 if sigterm else 130


def retry_interrupted(err: Console, *, sigterm: bool) -> int:
    """`dlq retry` stopped as `sync` is: what it read or queued again is kept, the letters not cleared stay."""
    how = " (SIGTERM)" if sigterm else ""
    err.print(f"interrupted{how}: what was read or queued again so far is kept (the next sync delivers it); letters "
              "not cleared yet stay: run dlq retry again (karla-connector status shows what is pending)",
              highlight=False)
    return 143 if sigterm else 130
