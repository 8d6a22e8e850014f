"""One drain's requests and what Karla answered to them: delivered, split, refused, waiting or given up.

``drain_outbox`` (``connector.delivery``) decides the order of the batches and how many are on the wire;
``Sender`` sends one batch (on a sender thread, touching no state) and records its answer (on the
draining thread): the outbox, the dead letters and the counts of the drain. What a refusal of records
makes of them (letters, waits, what goes again) is ``connector.refusals``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from connector import suspects
from connector.errors import Aborted, BatchTooLarge, ConfigError, FatalError, RecordRejected, ShopRefused, Unavailable
from connector.going_live import sandbox_refusal
from connector.items import BatchCap, Item
from connector.karla.client import SANDBOX_HEADER, KarlaClient
from connector.logs import redact, redact_data
from connector.refusals import Refusals
from connector.refusals import answer as _answer
from connector.settings import KarlaSettings
from state import DeadLetters, Outbox, StateDB
from state import karla_target

__all__ = ["SHOP_REFUSED", "DeliveryResult", "Outcome", "Sender"]

log = logging.getLogger("connector.delivery")
# Karla's batch limit as its 413 answers showed it, per Karla (its base URL): it outlives a drain and a
# client, and the early delivery process a big sync forks starts from what its parent learnt.
_CAPS: dict[str, BatchCap] = {}
SHOP_REFUSED = "Karla refuses this shop"  # how the note on a refused shop's waiting orders starts (``last_error``)


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
    answered_by_shop: dict[str, int] = field(default_factory=dict)  # requests Karla answered without refusing the shop


class Sender:
    def __init__(
        self, db: StateDB, client: KarlaClient, settings: KarlaSettings, now: Callable[[], float],
        shops: Collection[str] | None = None,
    ) -> None:
        self.db, self.client, self.settings, self.now, self.shops = db, client, settings, now, shops
        self.result = DeliveryResult()
        self.cap = _CAPS.setdefault(client.settings.base_url, BatchCap())
        self.cut = threading.Event()  # set: no batch of this drain retries or starts any more
        self.down: Unavailable | None = None  # the first batch that gave up: why the drain ends
        self.gave_up: list[Item] = []  # ... and its items (they become suspects)
        self.up = False  # Karla answered well in this drain: it is not down
        self.refused_shops: dict[str, ShopRefused] = {}  # by slug: their orders are not sent in this drain
        self._karla_letters: bool | None = None  # whether any letter of Karla's exists (looked at once)
        self._karla_noted = False  # which Karla acknowledged is noted in the state file (once per drain)
        with db.read() as conn:  # a sandbox's file takes no real Karla's acknowledgement (``_judge_answer``)
            self._noted = karla_target.noted(conn)
        self.sandbox = False  # the Karla answering this drain is the embedded sandbox (its answers say so)
        self._notes: list[int] = []  # on_wire notes of this drain's requests ...
        self._heard: list[int] = []  # ... and those whose answers are recorded since the last note
        self.refusals = Refusals(db, settings, now, self.result, self._dead)  # Karla refused records (422)

    def announce(self, items: list[Item]) -> int:
        """Note the request's parts on ``on_wire`` before it goes (see ``Outbox.drop_acknowledged``)."""
        with self.db.transaction() as conn:
            note = Outbox(conn).note_on_wire([r for item in items for r in item.rows], self._heard)
        self._heard = []
        self._notes.append(note)
        return note

    def heard(self, note: int) -> None:
        """The request's outcome is recorded: its note goes with the next one's transaction (or ``close``)."""
        self._heard.append(note)

    def close(self) -> None:
        """Every request of this drain is accounted for: no note of it is needed any more. Not called when a
        drain ends by an unexpected error or an interrupt: a request may have been on the wire then."""
        if self._notes:
            with self.db.transaction() as conn:
                Outbox(conn).answered(self._notes)
            self._notes, self._heard = [], []
        if (news := self.cap.news()) is not None:
            log.warning("%s", news)

    def _resend(self, slug: str, again: list[list[Item]]) -> None:
        """Send what an answer asked to send again (a split, the rest after a refusal), and what their
        answers ask for in turn: a loop, not recursion, however many rounds one refusal per answer takes."""
        while again:
            items = again.pop(0)
            note = self.announce(items)
            try:
                outcome = self.attempt(slug, items)
            except Unavailable:
                self.uncertain(items)  # it may have reached Karla; it stays pending
                self.heard(note)
                raise
            again[:0] = self._record(slug, items, outcome)
            self.heard(note)

    def attempt(self, slug: str, items: list[Item]) -> Outcome:
        """The request alone, safe on the sender thread: it touches neither the state nor the counters."""
        alone = len(items) == 1 and suspects.is_suspect(items[0])  # tried again on its own backoff: no retries here
        try:
            self.client.bulk_upsert_raw(slug, b"[" + b",".join(i.body for i in items) + b"]", abort=self.cut, once=alone)
        except (BatchTooLarge, RecordRejected, ShopRefused) as exc:
            return exc  # ShopRefused: that shop's orders wait, the other shops' go on (``refused_shops``)
        except Unavailable as exc:
            if alone and suspects.server_failed(exc):
                return exc  # one order alone: settle() decides whether it or Karla is the trouble
            if not isinstance(exc, Aborted) and self.down is None:
                self.down, self.gave_up = exc, items  # a benign race: any batch that gave up explains the stop
            self.cut.set()  # Karla is down: the batches in flight stop retrying, the queued ones stay pending
            raise
        except FatalError:
            self.cut.set()
            raise
        self._judge_answer()
        return None

    def _judge_answer(self) -> None:
        """Karla acknowledged a batch (on this thread): for a file the sandbox filled, an answer without its
        mark is a real Karla's, reached at an address on this machine (a tunnel) or under the sandbox's: refused
        before the batch counts as delivered, as `sync` refuses such a file against a Karla elsewhere."""
        self.sandbox = self.client.answered_by_sandbox()
        if not self.sandbox and self._noted is not None and self._noted.sandbox:
            self.cut.set()
            url = karla_target.normalised(self.client.settings.base_url)
            raise ConfigError(sandbox_refusal(self.db.path, self._noted, f"Karla at {url} answered without the "
                                              f"sandbox's {SANDBOX_HEADER} header", url))

    def settle(self, slug: str, items: list[Item], outcome: Outcome) -> None:
        """Record what Karla answered, sending again what it asks for; runs on the draining thread only."""
        self._resend(slug, self._record(slug, items, outcome))

    def _record(self, slug: str, items: list[Item], outcome: Outcome) -> list[list[Item]]:
        """Record one answer; returns the batches to send again."""
        if isinstance(outcome, Unavailable):  # no answer to count: Karla failed on it (see _failed_alone)
            self._failed_alone(slug, items[0], outcome)
            return []
        self.result.requests += 1
        if isinstance(outcome, ShopRefused):
            self._shop_refused(items, outcome)
            return []
        self.result.answered_by_shop[slug] = self.result.answered_by_shop.get(slug, 0) + 1  # the shop is taken again
        if outcome is None:
            self.cap.accepted(len(items))
            self._delivered(items)
        elif isinstance(outcome, RecordRejected):
            return self.refusals.rejected(items, outcome)
        else:
            self.cap.too_large(len(items))
            if len(items) > 1:
                return self.cap.cut(items)
            self._dead(items[0], f"Karla refused the request as too large ({outcome})", None)
        return []

    def _shop_refused(self, items: list[Item], exc: ShopRefused) -> None:
        """The shop's orders wait for its fix, unless no source sends to it any more: the slug was corrected
        since they were read, and waiting would fail every run for good. Their letters advise `sync --full` (the
        order as it is now, for its shop now), not a retry: this data may be older than what that shop has since.
        They are tagged ``no_source`` for `dlq retry`, which keeps them (``connector.dlq_shops.for_no_shop``).
        Those that wait carry Karla's answer (masked), as ``status`` shows it and a drain that leaves them out
        records it (``keep_delivery``)."""
        if self.shops is not None and exc.slug not in self.shops:
            for item in items:
                self._dead(item, f"Karla refuses shop {exc.slug!r} and no source sends to it any more (a shop_slug "
                                 "corrected since this order was read): `sync --full` reads the order again for the "
                                 "shop now configured (a CSV source that archived or deleted its files since: move "
                                 "them back into the source's folder first; with delete they are gone: check the "
                                 "order in Karla); then `dlq drop` this letter",
                           {**_answer(None, None, str(exc)), "no_source": True})
            return
        if exc.slug not in self.refused_shops:
            log.error("orders of shop %r wait: %s", exc.slug, exc)
            with self.db.transaction() as conn:  # `status` lists them as waiting, with why; a fixed key sends them at once
                Outbox(conn).note_refused(exc.slug, f"{SHOP_REFUSED}: {redact(str(exc))}", SHOP_REFUSED)
        self.refused_shops.setdefault(exc.slug, exc)

    def _dead(self, item: Item, reason: str, details: dict[str, Any] | None) -> None:
        """Make ``item`` a letter. Karla's answer (an echo of the credentials by a proxy or Karla) is masked before
        it is stored: ``status`` and ``dlq list`` run from shells that know no secret to mask it with. The
        order itself is kept as read: it holds none, and `dlq retry` sends it again."""
        rows = item.rows
        reason, details = redact(reason), redact_data(details)
        letter = {
            "created_at": self.now(), "stage": "karla", "source": rows[0].source, "stream": rows[0].stream,
            "slug": item.slug, "order_key": item.key, "id_type": rows[0].id_type,
            "location": ", ".join(sorted({r.location for r in rows if r.location})) or None,
            "reason": reason, "details": details, "payload": json.loads(item.body),
            "versions": {r.part: r.version for r in rows if r.version is not None} or None,  # `dlq retry` queues them so
        }
        with self.db.transaction() as conn:
            new = DeadLetters(conn).add([letter])  # 0: the same refusal as before, its letter refreshed
            self._karla_letters = True
            Outbox(conn).remove(rows)
        self.result.dead += 1
        self.result.dead_by_source[rows[0].source] = self.result.dead_by_source.get(rows[0].source, 0) + new
        self.result.dead_letters.append(reason)
        log.warning("dead letter: %s", reason, extra={"source": rows[0].source})

    def _delivered(self, items: list[Item]) -> None:
        rows = [row for item in items for row in item.rows]
        with self.db.transaction() as conn:
            Outbox(conn).mark_delivered(rows, self.now())
            if not self._karla_noted:  # a sandbox's file must not pass for the real Karla's (``connector.going_live``)
                was = karla_target.note(conn, self.client.settings.base_url, self.client.settings.user, self.sandbox,
                                        self.now())
                if was is not None and not was.sandbox and self.sandbox:  # the production file, run against the sandbox
                    log.warning("the state file %s held deliveries to Karla at %s, and now the sandbox at %s "
                                "acknowledged orders in it: they count as sent in this file, so `sync`, `run` and "
                                "`check` refuse it for the real Karla from now on (it needs a new state file)",
                                self.db.path, was.base_url, self.client.settings.base_url)
                self._karla_noted = True
            if self._karla_letters is None:
                self._karla_letters = DeadLetters(conn).has_karla_letters()  # once per drain: usually none
            if self._karla_letters:  # a fixed order that went out clears its letter
                for slug in {item.slug for item in items}:
                    DeadLetters(conn).settle_delivered(slug, [item.key for item in items if item.slug == slug])
        self.result.orders += sum(1 for r in rows if r.part == "order")
        self.result.trackings += sum(1 for r in rows if r.part != "order")
        self.up = True

    def _failed_alone(self, slug: str, item: Item, exc: Unavailable) -> None:
        """A suspect failed on its own: if Karla is up, the order is the trouble and waits; else Karla is down."""
        self.uncertain([item])
        if self.down is not None:  # found down already (another suspect in flight): no second probe
            raise exc
        if not self.up:
            try:
                self.client.check(slug)  # a read that changes nothing: does Karla answer at all?
            except Unavailable:
                self.down = exc
                self.cut.set()
                raise exc from None
            self.up = True
        if (hours := suspects.hours_failing(item, self.now())) > self.settings.failing_order_max_age_hours:  # not forever: a letter is where people look
            self._dead(item, f"Karla kept failing on order {item.key} alone for {hours:.0f} hours ({exc}); `dlq retry` "
                             "sends it again", _answer(500, None, str(exc)))
            return
        pause = suspects.postpone(self.db, item, exc, self.now())
        self.result.postponed += 1
        log.warning("order %s: Karla failed on it alone (%s) while accepting other orders; it is tried again in %.0f s",
                    item.key, exc, pause, extra={"source": item.rows[0].source})

    def uncertain(self, items: list[Item]) -> None:
        """Karla may have stored these parts without saying so (a 5xx, a timeout): forget what it acknowledged
        for them before, so a later change back to that version is sent, not taken as what Karla has."""
        with self.db.transaction() as conn:
            Outbox(conn).forget_acknowledged([r for item in items for r in item.rows])


Outcome = BatchTooLarge | RecordRejected | ShopRefused | Unavailable | None

