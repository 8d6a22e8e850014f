"""Early delivery: a second process sends what a big sync has queued while the sync is still reading.

Reading (parsing, mapping, validating, writing the outbox) and delivery each keep one Python
interpreter busy; in one process they can only take turns. Once a sync has queued enough for a few
batches, ``EarlyDelivery`` starts a delivery process on the same state file. The outbox stays the only
hand-over: the reader commits pages, the delivery process marks what Karla acknowledged, each in its own
SQLite transaction, so a crash of either loses nothing.

Only complete orders go early, in full batches, so nothing is sent twice and the request count stays at
its minimum: an order qualifies once its order part was queued by the *last* stream its source reads in
this run (the CSV source reads parcels first, then orders, so by then an order's parcels are queued
too). Everything else — parcels for orders queued earlier, the last partial batch, orders the early pass
did not reach — is sent by the ordinary drain the same process runs when reading has finished.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import fields
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from connector.delivery import DeliveryResult, drain_outbox
from connector.errors import ConfigError, FatalError, ShopRefused, Unavailable
from connector.job_errors import StateBusy, busy_message, locked, unwritable
from connector.karla.client import KarlaClient
from connector.settings import KarlaSettings, Settings
from state import Outbox, PendingRow, StateDB, open_state

__all__ = ["EarlyDelivery", "Gone"]

log = logging.getLogger("connector.delivery")
# "state": the state file could not be written (a full disk); raised as what SQLite said, so the CLI says it
# as such (``connector.job_errors.unwritable``) rather than as a bug; "busy": another process kept it locked
_ERRORS: dict[str, type[Exception]] = {"unavailable": Unavailable, "config": ConfigError, "fatal": FatalError,
                                       "state": sqlite3.OperationalError, "busy": StateBusy}


def _refused_slug(kind: str) -> str | None:
    """``shop:SLUG``: the delivery process ended with ``ShopRefused`` (the reader reports it as its own drain would)."""
    return kind.removeprefix("shop:") if kind.startswith("shop:") else None


class EarlyDelivery:
    """The reading side: tells the delivery process what may go, then collects its result."""

    def __init__(self, settings: Settings, db: StateDB, shops: Collection[str] | None = None) -> None:
        self.settings, self.db, self.shops = settings, db, shops
        self.start_after = settings.karla.deliver_while_reading_after
        self.queued = 0
        self.final: list[tuple[str, str]] = []
        self._proc: Any = None
        self._pipe: Connection | None = None
        self._result: tuple | None = None  # its final message, if it ended while reading went on
        self.stats = (0, 0)  # the delivery process's requests and bytes sent
        self.sent = 0  # orders it reported delivered while reading went on

    @property
    def started(self) -> bool:
        return self._proc is not None

    def stream(self, source: str, stream: str, last: bool) -> None:
        """The engine starts reading ``stream``; orders from a source's last stream are complete once queued."""
        if last:
            self.final.append((source, stream))
            self._send(("final", source, stream))

    def page(self, enqueued: int) -> None:
        """A page was committed: wake the delivery process, or start it once enough is queued."""
        self.queued += enqueued
        if self._proc is None and self.queued >= self.start_after:
            self._start()
            return
        self._send(("page",))
        self._take_reports()

    def _take_reports(self) -> None:
        """Read what it reported so far (a full pipe would block it). It may have ended already (Karla
        down, a refused key, killed): reading goes on regardless, and ``finish`` reports why."""
        try:
            while self._pipe is not None and self._result is None and self._pipe.poll():
                message = self._pipe.recv()
                if message[0] == "batch":
                    self.sent += message[1]
                elif message[0] == "result":
                    self._result = message
        except (EOFError, OSError):
            pass  # gone without a result: finish() finds out the same way

    def stop(self) -> None:
        """Shutdown: the delivery process stops after the request on the wire (nothing is lost)."""
        self._send(("stop",))

    def finish(self, on_batch: Callable[[int], None] | None = None) -> DeliveryResult | None:
        """Reading is over: wait for the delivery process to drain the outbox. None if it never started."""
        if self._pipe is None:
            return None
        self._send(("done",))
        if on_batch and self.sent:
            on_batch(self.sent)
        try:
            return self._collect(on_batch)
        finally:
            self.close()

    def close(self) -> None:
        """Leave nothing running: after an error in the reading process too (a closed pipe stops it)."""
        if self._pipe is not None:
            self._send(("stop",))
            self._pipe.close()
            self._pipe = None
            self._proc.join()

    def _collect(self, on_batch: Callable[[int], None] | None) -> DeliveryResult:
        assert self._pipe is not None and self._proc is not None
        while True:
            try:
                message = self._result or self._pipe.recv()
            except (EOFError, OSError):
                # It died (killed, out of memory) before it could answer: what it did not mark as
                # delivered is still pending, and the caller drains it here.
                self._proc.join()
                raise Gone(f"the delivery process ended with exit code {self._proc.exitcode}") from None
            if message[0] == "batch" and on_batch:
                on_batch(message[1])
            elif message[0] == "result":
                _, result, error, self.stats = message
                if error is not None:
                    kind, text = error
                    exc = ShopRefused(text, slug=slug) if (slug := _refused_slug(kind)) else _ERRORS.get(kind, RuntimeError)(text)
                    exc.result = result  # type: ignore[attr-defined]
                    raise exc
                return result

    def _start(self) -> None:
        # fork: the delivery process shares the loaded code with this one (the pages stay shared until
        # written, which keeps the two processes' memory together well below two separate interpreters')
        # and inherits the logging set-up with its secret masking and the collector tuning. It never
        # touches this process's SQLite connections or HTTP client: it opens its own.
        self.db.engine.dispose()  # no open SQLite connection may cross a fork (SQLite's own rule): reopened lazily
        ctx = multiprocessing.get_context("fork")
        self._pipe, theirs = ctx.Pipe()
        args = (self.settings.state.path, self.settings.karla, self.final, theirs, self._pipe, self.shops)
        self._proc = ctx.Process(target=_run, args=args, name="karla-delivery")
        self._proc.start()
        theirs.close()
        log.info("delivering complete orders from a second process (delivery process %s) while reading on", self._proc.pid)

    def _send(self, message: tuple) -> None:
        if self._pipe is not None:
            try:
                self._pipe.send(message)
            except (BrokenPipeError, OSError):
                pass  # it has ended; finish() reports why


class Gone(RuntimeError):
    """The delivery process vanished without a result."""


class _Follow:
    """The delivery side's view of the reader: what may go early, and whether reading is over."""

    def __init__(self, db: StateDB, pipe: Connection, final: list[tuple[str, str]]) -> None:
        self.db, self.pipe = db, pipe
        self.final = set(final)
        self.done = self.stopped = False
        self.after_id = 0
        self.handled = 0  # messages taken so far
        self.settle: Callable[[], None] = lambda: None  # records Karla's outstanding answers (lent by the drain)

    def lend(self, settle: Callable[[], None]) -> None:
        self.settle = settle

    def handle(self, message: tuple) -> None:
        self.handled += 1
        if message[0] == "final":
            self.final.add((message[1], message[2]))
        elif message[0] == "done":
            self.done = True
        elif message[0] == "stop":
            self.stopped = True

    def poll(self) -> bool:
        """Take every waiting message; True once asked to stop (or the reader is gone)."""
        try:
            while not self.stopped and self.pipe.poll():
                self.handle(self.pipe.recv())
        except (EOFError, OSError):
            self.stopped = True
        return self.stopped

    def wait(self) -> None:
        try:
            self.handle(self.pipe.recv())
        except (EOFError, OSError):
            self.stopped = True

    def groups(self) -> Iterator[list[PendingRow]]:
        """Complete orders in the order they were queued, until reading is over."""
        while not self.poll():
            found = self._next()
            if found is not None:
                yield from found
            elif self.done:
                return
            else:
                handled = self.handled
                self.settle()  # before waiting for the reader, however long: no answer waits unrecorded
                if self.handled == handled:  # (settling polls the pipe: a "done" taken there must not be waited for)
                    self.wait()

    def _next(self) -> list[list[PendingRow]] | None:
        """The complete orders among the next rows queued (maybe none); None when nothing new was queued."""
        with self.db.read() as conn:
            outbox = Outbox(conn)
            new = outbox.queued_after(self.after_id)
            if not new:
                return None
            self.after_id = new[-1][0]
            keys = [(slug, key) for _, slug, key, part, source, stream in new if part == "order" and (source, stream) in self.final]
            return outbox.groups_of(keys)


def _run(path: Path, karla: KarlaSettings, final: list[tuple[str, str]], pipe: Connection, readers_end: Connection,
         shops: Collection[str] | None = None) -> None:
    """The delivery process: early full batches while the reader reads, then the ordinary drain."""
    readers_end.close()  # the copy fork gave us: with it open, the reader's death would never reach ``pipe``
    # The reader decides when to stop and says so (or its end of the pipe closes when it dies): a Ctrl-C
    # or a SIGTERM to the whole process group must not cut a request whose answer is not yet recorded.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    db = open_state(path, durable=False)  # a lost acknowledgement is an idempotent re-send: no fsync per batch
    client = KarlaClient(karla)
    follow = _Follow(db, pipe, final)
    total, error = DeliveryResult(), None
    on_batch = lambda n: _tell(pipe, ("batch", n))  # noqa: E731
    try:
        refused: ShopRefused | None = None
        for full_only in (True, False):
            groups = follow.groups() if full_only else None
            try:
                _add(total, drain_outbox(db, client, karla, now=time.time, on_batch=on_batch, stop=follow.poll,
                                         groups=groups, full_batches_only=full_only, lend_settle=follow.lend, shops=shops))
            except ShopRefused as exc:  # that shop's orders wait; the other shops' last batches still go
                _add(total, getattr(exc, "result", DeliveryResult()))
                refused = refused or exc
            if follow.stopped:  # a stop request (or the reader is gone): the rest stays pending
                break
        if refused is not None:
            raise refused
    except ShopRefused as exc:  # its result is counted already
        error = (f"shop:{exc.slug}", str(exc))
    except (Unavailable, FatalError) as exc:
        _add(total, getattr(exc, "result", DeliveryResult()))
        kind = "unavailable" if isinstance(exc, Unavailable) else "config" if isinstance(exc, ConfigError) else "fatal"
        error = (kind, str(exc))
    except Exception as exc:  # noqa: BLE001 - reported to the reader, which exits 4 like any bug
        error = _failure(exc, path)
    finally:
        client.close()
        db.close()
    _tell(pipe, ("result", total, error, (client.stats.requests, client.stats.bytes_sent)))


def _failure(exc: Exception, path: Path) -> tuple[str, str]:
    """What the reader is told of a failure: a locked state file as such, a full disk as SQLite's words alone (the
    reader names the file), a bug with its type; only a bug's traceback is logged."""
    if locked(exc):  # the reader says it once (`sync` exits 3); no traceback: it is no bug
        log.debug("the delivery process met a locked state file", exc_info=True)
        return "busy", busy_message(path)
    full = unwritable(exc)
    if full is not None and full[0] is None:
        log.debug("the delivery process cannot write the state file", exc_info=True)
        return "state", full[1]
    log.error("the delivery process failed", exc_info=True)
    return "internal", f"{type(exc).__name__}: {exc}"


def _tell(pipe: Connection, message: tuple) -> None:
    try:
        pipe.send(message)
    except OSError:
        pass  # the reader is gone: what was delivered is recorded in the state file, the rest is pending


def _add(total: DeliveryResult, part: DeliveryResult) -> None:
    for f in fields(DeliveryResult):
        mine, theirs = getattr(total, f.name), getattr(part, f.name)
        if isinstance(mine, dict):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        else:
            setattr(total, f.name, mine + theirs)
