"""Delivery: drain the outbox into Bulk Fulfillment calls, bounded by item count and body bytes.

Each order's pending parts travel as one item (its order object, if changed, plus its new trackings), so
an order always arrives with or before its fulfillments. Outcomes per batch (the table is
``connector.errors.action_for``):
2xx → parts remembered as delivered; 413 → split; a rejection (422, or a record-level key such as
``order_exists``) → the items Karla named become dead letters (or wait, for ``order_not_found``), the
rest are sent again; when Karla names no item the batch is bisected; a fatal answer stops the drain with
everything pending except the batches in flight, whose answers are still recorded (Karla may have
accepted them); a retryable failure that outlasts its retries ends the drain, and cuts short the
retries of the other batches in flight (they stay pending too); if it was a 5xx, its orders become
suspects, sent alone and last from then on (``connector.suspects``: one order Karla keeps failing on
must not pass for an outage and hold back every order behind it).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from connector import suspects
from connector.errors import Aborted, BatchTooLarge, FatalError, RecordRejected, Unavailable, item_index
from connector.karla.client import KarlaClient
from connector.settings import KarlaSettings
from connector.items import Item, batches, pending_groups
from state import DeadLetters, Outbox, PendingRow, StateDB

__all__ = ["DeliveryResult", "drain_outbox"]

log = logging.getLogger("connector.delivery")
_NOT_FOUND = "order_not_found"
_POLL = 0.1  # how often a wait for Karla's answer looks at ``stop()``: the latency of a shutdown request


@dataclass(slots=True)
class DeliveryResult:
    orders: int = 0
    trackings: int = 0
    dead: int = 0
    deferred: int = 0
    postponed: int = 0  # suspects that failed alone while Karla accepted other orders
    requests: int = 0
    dead_letters: list[str] = field(default_factory=list)
    dead_by_source: dict[str, int] = field(default_factory=dict)  # new letters, for the metric's ``source`` label


class _Sender:
    def __init__(self, db: StateDB, client: KarlaClient, settings: KarlaSettings, now: Callable[[], float]) -> None:
        self.db, self.client, self.settings, self.now = db, client, settings, now
        self.result = DeliveryResult()
        self.cut = threading.Event()  # set: no batch of this drain retries or starts any more
        self.down: Unavailable | None = None  # the first batch that gave up: why the drain ends
        self.gave_up: list[Item] = []  # ... and its items (they become suspects)
        self.up = False  # Karla answered well in this drain: it is not down

    def send(self, slug: str, items: list[Item]) -> None:
        """Send and settle at once (used for splits and re-sends)."""
        self.settle(slug, items, self.attempt(slug, items))

    def attempt(self, slug: str, items: list[Item]) -> Outcome:
        """The request alone, safe on the sender thread: it touches neither the state nor the counters."""
        try:
            self.client.bulk_upsert_raw(slug, b"[" + b",".join(i.body for i in items) + b"]", abort=self.cut)
        except (BatchTooLarge, RecordRejected) as exc:
            return exc
        except Unavailable as exc:
            if len(items) == 1 and suspects.is_suspect(items[0]) and suspects.server_failed(exc):
                return exc  # one order alone: settle() decides whether it or Karla is the trouble
            if not isinstance(exc, Aborted) and self.down is None:
                self.down, self.gave_up = exc, items  # a benign race: any batch that gave up explains the stop
            self.cut.set()  # Karla is down: the batches in flight stop retrying, the queued ones stay pending
            raise
        except FatalError:
            self.cut.set()
            raise
        return None

    def settle(self, slug: str, items: list[Item], outcome: Outcome) -> None:
        """Record what Karla answered; runs on the draining thread only."""
        self.result.requests += 1
        if outcome is None:
            self._delivered(items)
        elif isinstance(outcome, Unavailable):
            self._failed_alone(slug, items[0], outcome)
        elif isinstance(outcome, RecordRejected):
            self._rejected(slug, items, outcome)
        elif len(items) == 1:
            self._dead(items[0], f"Karla refused the request as too large ({outcome})", None)
        else:
            self._halves(slug, items)

    def _halves(self, slug: str, items: list[Item]) -> None:
        middle = len(items) // 2
        self.send(slug, items[:middle])
        self.send(slug, items[middle:])

    def _rejected(self, slug: str, items: list[Item], exc: RecordRejected) -> None:
        details = exc.details or {}
        per_item: dict[int, list[dict[str, Any]]] = {}
        for entry in details.get("errors", []):
            index = item_index(entry)
            if index is not None and 0 <= index < len(items):
                per_item.setdefault(index, []).append(entry)
        if per_item:
            for index, entries in per_item.items():
                self._refused(items[index], details, entries)
            rest = [item for index, item in enumerate(items) if index not in per_item]
            if rest:
                self.send(slug, rest)
        elif len(items) == 1:
            self._refused(items[0], details, details.get("errors", []))
        else:
            self._halves(slug, items)

    def _refused(self, item: Item, details: dict[str, Any], entries: list[dict[str, Any]]) -> None:
        types = {e.get("type") for e in entries} | ({details.get("key")} if not entries else set())
        if types == {_NOT_FOUND}:
            self._defer(item)
            return
        said = " ".join(str(v) for v in (details.get("status"), details.get("key")) if v)
        reason = "; ".join(_describe(e) for e in entries) or f"{said}: {details.get('message') or 'no message'}"
        info = {"status": details.get("status"), "key": details.get("key"), "message": details.get("message"), "errors": entries}
        self._dead(item, f"Karla rejected order {item.key}: {reason}", info)

    def _defer(self, item: Item) -> None:
        """Karla does not know the order yet: wait for it, but not forever."""
        now = self.now()
        age_hours = (now - min(r.first_enqueued_at for r in item.rows)) / 3600
        if age_hours > self.settings.unknown_order_max_age_hours:
            reason = (
                f"Karla does not know order {item.key} and no order data for it arrived within "
                f"{self.settings.unknown_order_max_age_hours:g} hours; its trackings were not delivered"
            )
            self._dead(item, reason, {"key": _NOT_FOUND})
            return
        with self.db.transaction() as conn:
            Outbox(conn).postpone(item.rows, now + suspects.backoff(item.rows), f"{_NOT_FOUND}: waiting for the order")
        self.result.deferred += 1

    def _dead(self, item: Item, reason: str, details: dict[str, Any] | None) -> None:
        rows = item.rows
        letter = {
            "created_at": self.now(), "stage": "karla", "source": rows[0].source, "stream": rows[0].stream,
            "slug": item.slug, "order_key": item.key, "id_type": rows[0].id_type,
            "location": ", ".join(sorted({r.location for r in rows if r.location})) or None,
            "reason": reason, "details": details, "payload": json.loads(item.body),
        }
        with self.db.transaction() as conn:
            new = DeadLetters(conn).add([letter])  # 0: the same refusal as before, its letter refreshed
            Outbox(conn).remove(rows)
        self.result.dead += 1
        self.result.dead_by_source[rows[0].source] = self.result.dead_by_source.get(rows[0].source, 0) + new
        self.result.dead_letters.append(reason)
        log.warning("dead letter: %s", reason, extra={"source": rows[0].source})

    def _delivered(self, items: list[Item]) -> None:
        rows = [row for item in items for row in item.rows]
        with self.db.transaction() as conn:
            Outbox(conn).mark_delivered(rows, self.now())
        self.result.orders += sum(1 for r in rows if r.part == "order")
        self.result.trackings += sum(1 for r in rows if r.part != "order")
        self.up = True

    def _failed_alone(self, slug: str, item: Item, exc: Unavailable) -> None:
        """A suspect failed on its own: if Karla is up, the order is the trouble and waits; else Karla is down."""
        if not self.up:
            try:
                self.client.check(slug)  # a read that changes nothing: does Karla answer at all?
            except Unavailable:
                self.down = exc
                self.cut.set()
                raise exc from None
            self.up = True
        pause = suspects.postpone(self.db, item, exc, self.now())
        self.result.postponed += 1
        log.warning("order %s: Karla failed on it alone (%s) while accepting other orders; it is tried again in %.0f s",
                    item.key, exc, pause, extra={"source": item.rows[0].source})


Outcome = BatchTooLarge | RecordRejected | Unavailable | None


def _describe(entry: dict[str, Any]) -> str:
    loc = entry.get("loc") or []
    path = ".".join(str(p) for p in loc[2:] if p != "body") if len(loc) > 2 else ".".join(str(p) for p in loc if p != "body")
    kind = f" ({entry['type']})" if entry.get("type") else ""
    return f"{path or 'item'}: {entry.get('msg', '')}{kind}"


def drain_outbox(
    db: StateDB,
    client: KarlaClient,
    settings: KarlaSettings,
    *,
    now: Callable[[], float],
    on_batch: Callable[[int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    groups: Iterable[list[PendingRow]] | None = None,
    full_batches_only: bool = False,
    lend_settle: Callable[[Callable[[], None]], None] | None = None,
) -> DeliveryResult:
    """Send everything that is due (or the given ``groups``). Raises ``Unavailable`` (nothing lost) or ``FatalError`` (stop),
    either carrying the ``DeliveryResult`` so far as ``exc.result``.

    ``stop()`` turning true (or ``client.abort()``) ends the drain within ``_POLL`` seconds plus the
    answer to a request already on the wire: retries are cut short, unsent batches stay pending, and
    the result is returned as usual.

    Requests go out in key order from ``max_in_flight`` sender threads (one by default); this thread
    meanwhile records the answers in the order the batches were sent (state writes, dead letters,
    splits) and builds the next batch from rows after the previous batch's keys, so Karla's response
    time overlaps our own work and nothing is read twice. Batches never share an order, so requests
    in flight together never depend on each other.

    ``full_batches_only`` leaves the last, partly filled batch pending (delivery while a sync still
    reads: the next drain fills it, so the number of requests stays at its minimum). ``lend_settle``
    receives a function that records every answer still outstanding: ``groups`` that may block for a
    long time (waiting for the reader) call it first, so no answer waits unrecorded meanwhile.
    """
    sender = _Sender(db, client, settings, now)
    if groups is None:  # a whole drain: no batch of ours is on the wire (see Outbox.drop_acknowledged)
        with db.transaction() as conn:
            Outbox(conn).drop_acknowledged()
    max_bytes = settings.bulk_max_bytes
    oversized: list[Item] = []
    held: list[Item] = []  # suspects: sent alone, after every other batch

    def due_items() -> Iterator[Item]:
        current = now()
        for rows in pending_groups(db) if groups is None else groups:
            if min(r.next_attempt_at for r in rows) > current:
                continue
            item = Item.build(rows)
            if len(item.body) + 2 > max_bytes:
                oversized.append(item)
            elif suspects.is_suspect(item):
                held.append(item)
            else:
                yield item

    def alone() -> Iterator[tuple[str, list[Item]]]:
        while held and not full_batches_only:
            item = held.pop(0)
            yield item.slug, [item]

    queue: deque[tuple[Future[Outcome], str, list[Item]]] = deque()
    in_flight = settings.max_in_flight
    stopping = lambda: client.aborted or (stop is not None and stop())  # noqa: E731

    def settle_all() -> None:
        while queue and not _settle_oldest(queue, sender, on_batch, stopping):
            pass

    if lend_settle:
        lend_settle(settle_all)
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="karla-send") as pool:
        try:
            every = itertools.chain(batches(due_items(), settings.bulk_max_orders, max_bytes, partial=not full_batches_only), alone())
            for slug, batch in every:
                queue.append((pool.submit(sender.attempt, slug, batch), slug, batch))
                if len(queue) > in_flight and _settle_oldest(queue, sender, on_batch, stopping):
                    break
            while queue:
                _settle_oldest(queue, sender, on_batch, stopping)
        except Unavailable as exc:
            sender.cut.set()
            if suspects.server_failed(sender.down):
                suspects.mark(db, sender.gave_up, sender.down)  # type: ignore[arg-type]
            fatal = _settle_rest(queue, sender)
            if fatal is not None:
                fatal.result = sender.result  # type: ignore[attr-defined]
                raise fatal from exc
            down = sender.down or (None if isinstance(exc, Aborted) else exc)
            if down is None:  # cut short by a stop request, not by Karla: a normal end, nothing lost
                log.info("delivery stopped on request; %d orders delivered, the rest stays pending", sender.result.orders)
                return sender.result
            log.warning("Karla unavailable; %d orders delivered before, the rest stays pending", sender.result.orders)
            down.result = sender.result  # type: ignore[attr-defined]
            if down is exc:
                raise
            raise down from exc
        except FatalError as exc:
            sender.cut.set()
            _settle_rest(queue, sender)  # Karla may have accepted the batches on the wire: else they go twice
            exc.result = sender.result  # type: ignore[attr-defined]
            raise
        finally:
            sender.cut.set()  # leaving (also on an unexpected error): whatever still runs stops retrying
            for future, _, _ in queue:  # an unexpected error: send nothing more
                future.cancel()
            for item in oversized:
                sender._dead(item, f"order {item.key} is {len(item.body)} bytes, above bulk_max_bytes={max_bytes}", None)
    return sender.result


def _settle_oldest(queue: deque, sender: _Sender, on_batch: Callable[[int], None] | None, stop: Callable[[], bool] | None) -> bool:
    """Wait for the oldest request (re-raising a retryable failure) and record it; True when asked to stop.

    While waiting, ``stop()`` is looked at every ``_POLL`` seconds: once true, requests in flight stop
    retrying (a request on the wire still gets its answer) and none starts any more.
    """
    future, slug, batch = queue.popleft()
    if stop is not None:
        while not wait([future], timeout=_POLL).done:
            if stop():
                sender.cut.set()
                break
    sender.settle(slug, batch, future.result())
    if on_batch:
        on_batch(len(batch))
    if stop and stop():
        sender.cut.set()
        fatal = _settle_rest(queue, sender)
        if fatal is not None:
            raise fatal
        return True
    return False


def _settle_rest(queue: deque, sender: _Sender) -> FatalError | None:
    """Before leaving: requests not started are cancelled (they stay pending); those already sent are recorded.

    A fatal answer among them does not stop the others from being recorded (Karla may have accepted
    them): the first one is returned, for the caller to raise.
    """
    fatal = None
    while queue:
        future, slug, batch = queue.popleft()
        if future.cancel():
            continue
        try:
            sender.settle(slug, batch, future.result())
        except Unavailable:
            pass  # stays pending
        except FatalError as exc:
            fatal = fatal or exc  # this batch stays pending
    return fatal
