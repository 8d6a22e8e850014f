"""Delivery: drain the outbox into Bulk Fulfillment calls, bounded by item count and body bytes.

Each order's pending parts travel as one item (its order object, if changed, plus its new trackings), so
an order always arrives with or before its fulfillments. Outcomes per batch (the table is
``connector.errors.action_for``):
2xx → parts remembered as delivered; 413 → split; a rejection (422, or a record-level key such as
``order_exists``) → the items Karla named become dead letters (or wait, for ``order_not_found``; or only
the part a ``loc`` names, its order or one parcel: ``connector.refusals``), the rest are sent again;
when Karla names no item the batch is bisected; a shop Karla refuses (``ShopRefused``)
has its orders wait while other shops' go on, the drain then raising it; any other fatal answer stops the drain with
everything pending except the batches in flight, whose answers are still recorded (Karla may have
accepted them); a retryable failure that outlasts its retries ends the drain, and cuts short the
retries of the other batches in flight (they stay pending too); if it was a 500, its orders become
suspects, sent alone and last from then on (``connector.suspects``: one order Karla keeps failing on
must not pass for an outage and hold back every order behind it).
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait

from connector import suspects
from connector.errors import Aborted, FatalError, Unavailable
from connector.items import Item, batches, pending_groups
from connector.karla.client import KarlaClient
from connector.sender import DeliveryResult, Outcome, Sender
from connector.settings import KarlaSettings
from state import Outbox, PendingRow, StateDB

__all__ = ["DeliveryResult", "drain_outbox"]

log = logging.getLogger("connector.delivery")
_POLL = 0.1  # how often a wait for Karla's answer looks at ``stop()``: the latency of a shutdown request


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
    drop_acknowledged: bool = False,
    shops: Collection[str] | None = None,
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

    ``shops``: the shops some source still sends to; a shop Karla refuses that is not among them has its
    orders dead-lettered rather than waiting for a fix that was made (None: every refused shop waits).
    Whatever it raises carries the shops Karla refused in this drain as ``exc.refused_shops`` (by slug).
    ``drop_acknowledged``: first remove queued versions equal to what Karla acknowledged; only for a
    caller that knows no other batch is on the wire. ``full_batches_only`` leaves the last, partly filled batch pending (delivery while a sync still
    reads: the next drain fills it, so the number of requests stays at its minimum). ``lend_settle``
    receives a function that records every answer still outstanding: ``groups`` that may block for a
    long time (waiting for the reader) call it first, so no answer waits unrecorded meanwhile.
    """
    sender = Sender(db, client, settings, now, shops)
    try:
        result = _drain(sender, db, client, settings, now, on_batch, stop, groups, full_batches_only, lend_settle,
                        drop_acknowledged)
    except (Unavailable, FatalError) as exc:
        sender.close()  # every request is accounted for: answered, or its parts' acknowledged versions forgotten
        exc.refused_shops = dict(sender.refused_shops)  # type: ignore[attr-defined]  # the daemon leaves them out
        raise
    sender.close()
    if sender.refused_shops:  # the other shops' orders went; the run still ends with what needs a human
        refused = next(iter(sender.refused_shops.values()))
        refused.result = result  # type: ignore[attr-defined]
        refused.refused_shops = dict(sender.refused_shops)  # type: ignore[attr-defined]  # every shop refused, by slug
        raise refused
    return result


def _drain(
    sender: Sender, db: StateDB, client: KarlaClient, settings: KarlaSettings, now: Callable[[], float],
    on_batch: Callable[[int], None] | None, stop: Callable[[], bool] | None, groups: Iterable[list[PendingRow]] | None,
    full_batches_only: bool, lend_settle: Callable[[Callable[[], None]], None] | None, drop_acknowledged: bool,
) -> DeliveryResult:
    if drop_acknowledged:  # the caller's word that no other batch is on the wire (see Outbox.drop_acknowledged)
        with db.transaction() as conn:
            Outbox(conn).drop_acknowledged()
    max_bytes = settings.bulk_max_bytes
    oversized: list[Item] = []
    suspected: list[Item] = []  # suspects: sent alone, after every other batch

    def due_items() -> Iterator[Item]:
        current = now()
        for rows in pending_groups(db) if groups is None else groups:
            if min(r.next_attempt_at for r in rows) > current or rows[0].slug in sender.refused_shops:
                continue
            item = Item.build(rows)
            if len(item.body) + 2 > max_bytes:
                oversized.append(item)
            elif suspects.is_suspect(item):
                suspected.append(item)
            else:
                yield item

    def alone() -> Iterator[tuple[str, list[Item]]]:
        while suspected and not full_batches_only:
            item = suspected.pop(0)
            if item.slug not in sender.refused_shops:
                yield item.slug, [item]

    queue: deque[tuple[Future[Outcome], str, list[Item], int]] = deque()  # with each request's on_wire note
    in_flight = settings.max_in_flight
    stopping = lambda: client.aborted or (stop is not None and stop())  # noqa: E731

    def settle_all() -> None:
        while queue and not _settle_oldest(queue, sender, on_batch, stopping):
            pass

    if lend_settle:
        lend_settle(settle_all)
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="karla-send") as pool:
        try:
            every = itertools.chain(batches(due_items(), settings.bulk_max_orders, max_bytes, partial=not full_batches_only,
                                            cap=sender.cap), alone())
            for slug, batch in every:
                note = sender.announce(batch)
                queue.append((pool.submit(sender.attempt, slug, batch), slug, batch, note))
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
            log.info("Karla unavailable; %d orders delivered before, the rest stays pending", sender.result.orders)  # the caller warns
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
            for future, _, _, _ in queue:  # an unexpected error: send nothing more
                future.cancel()
            for item in oversized:
                sender._dead(item, f"order {item.key} is {len(item.body)} bytes, above bulk_max_bytes={max_bytes}", None)
    return sender.result


def _settle_oldest(queue: deque, sender: Sender, on_batch: Callable[[int], None] | None, stop: Callable[[], bool] | None) -> bool:
    """Wait for the oldest request (re-raising a retryable failure) and record it; True when asked to stop.

    While waiting, ``stop()`` is looked at every ``_POLL`` seconds: once true, requests in flight stop
    retrying (a request on the wire still gets its answer) and none starts any more.
    """
    future, slug, batch, note = queue.popleft()
    if stop is not None:
        while not wait([future], timeout=_POLL).done:
            if stop():
                sender.cut.set()
                break
    try:
        outcome = future.result()
    except Unavailable:
        sender.uncertain(batch)  # it may have reached Karla; it stays pending
        raise
    sender.settle(slug, batch, outcome)
    sender.heard(note)
    if on_batch:
        on_batch(len(batch))
    if stop and stop():
        sender.cut.set()
        fatal = _settle_rest(queue, sender)
        if fatal is not None:
            raise fatal
        return True
    return False


def _settle_rest(queue: deque, sender: Sender) -> FatalError | None:
    """Before leaving: requests not started are cancelled (they stay pending); those already sent are recorded.

    A fatal answer among them does not stop the others from being recorded (Karla may have accepted
    them): the first one is returned, for the caller to raise.
    """
    fatal = None
    while queue:
        future, slug, batch, _ = queue.popleft()  # its note goes with the drain's (Sender.close)
        if future.cancel():
            continue
        try:
            outcome = future.result()
        except Unavailable:
            sender.uncertain(batch)  # stays pending; it may have reached Karla
            continue
        except FatalError as exc:
            fatal = fatal or exc  # this batch stays pending
            continue
        try:
            sender.settle(slug, batch, outcome)  # a re-send inside (a split, the rest after a 422) marks its own
        except Unavailable:
            pass  # stays pending
        except FatalError as exc:
            fatal = fatal or exc  # this batch stays pending
    return fatal
