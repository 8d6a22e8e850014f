"""What a drain does with Karla's refusals of records: which items, or which parts of an item (its order, a
parcel), become letters; what waits for its order (``order_not_found``), and for how long; what goes again.

Apart from ``connector.sender`` because it is one decision with its own rules, and the Sender only needs
its answer: the batches to send again. It runs on the draining thread, as the Sender's recording does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connector import suspects
from connector.errors import RecordRejected, item_index
from connector.items import Item
from connector.settings import KarlaSettings
from state import DeadLetters, Outbox, PendingRow, StateDB

if TYPE_CHECKING:
    from connector.sender import DeliveryResult

__all__ = ["NOT_FOUND", "Refusals", "answer", "hours_queued"]

NOT_FOUND = "order_not_found"  # also the details of a letter of parcels that gave up waiting for their order
# Karla's keys about one parcel (a shipment), not its order; its error table gives them at the top level,
# naming no field, so the refused parcel is found by sending the item's parts apart (``_parcel_refused``).
_PARCEL_KEYS = frozenset({"carrier_reference_invalid", "shipment_exists", "shipment_not_found"})
# The next step a Karla letter names (`dlq list` shows its reason): either way the record goes and clears it.
_NEXT = "fix it at the source and it is sent again, or fix it in Karla and `dlq retry` this letter"
Dead = Callable[[Item, str, dict[str, Any] | None], None]  # ``Sender._dead``: make an item a letter


class Refusals:
    def __init__(self, db: StateDB, settings: KarlaSettings, now: Callable[[], float], result: DeliveryResult,
                 dead: Dead) -> None:
        self.db, self.settings, self.now, self.result, self._dead = db, settings, now, result, dead

    def rejected(self, items: list[Item], exc: RecordRejected) -> list[list[Item]]:
        """Record Karla's refusal of records in ``items``; returns the batches to send again."""
        details = exc.details or {}
        per_item: dict[int, list[dict[str, Any]]] = {}
        for entry in details.get("errors", []):
            index = item_index(entry)
            if index is not None and 0 <= index < len(items):
                per_item.setdefault(index, []).append(entry)
        if per_item:
            rest: list[Item] = []
            for index, item in enumerate(items):
                rest += self._refused_parts(item, details, per_item[index]) if index in per_item else [item]
            return [rest] if rest else []
        if len(items) == 1:
            entries = details.get("errors", [])
            if _about_parcels(details, entries) and any(r.part != "order" for r in items[0].rows):
                return self._parcel_refused(items[0], details, entries)
            self._refused(items[0], details, entries)
            return []
        return _halves(items)

    def _parcel_refused(self, item: Item, details: dict[str, Any], entries: list[dict[str, Any]]) -> list[list[Item]]:
        """Karla refused a parcel of one order without naming which: the order goes again without its parcels,
        which are halved as a batch's orders are until the refused one is alone and its letter names it; returns
        the batches to send again, the one with the order first (the parcels sent apart need it). Refusing the
        whole item would letter the valid order too: it would never reach Karla, nor its customers Karla's mails."""
        order = [r for r in item.rows if r.part == "order"]
        parcels = [r for r in item.rows if r.part != "order"]
        if len(parcels) == 1:
            self._refused(Item.build(parcels), details, entries, _parcel_names(parcels))
            return [[Item.build(order)]] if order else []
        middle = len(parcels) // 2
        return [[Item.build(order + parcels[:middle])], [Item.build(parcels[middle:])]]

    def _refused_parts(self, item: Item, details: dict[str, Any], entries: list[dict[str, Any]]) -> list[Item]:
        """Karla named fields of one item: only the parts they are in (its order, a parcel) become a letter;
        returns what of the item goes again. A valid parcel must not share the letter of a bad one or of
        its order: the letter would clear when they are fixed, and the parcel, never read again, be lost."""
        named = [item.named(e.get("loc")) for e in entries]
        if any(rows is None for rows in named):  # the item as a whole (its id), or a loc not understood
            self._refused(item, details, entries)
            return []
        bad = {r.id for rows in named if rows for r in rows}
        refused = Item.build([r for r in item.rows if r.id in bad])
        left = [r for r in item.rows if r.id not in bad]
        order_refused = any(r.part == "order" for r in refused.rows)
        self._refused(refused, details, entries, None if order_refused else _parcel_names(refused.rows))
        if order_refused and left:
            with self.db.read() as conn:
                known = Outbox(conn).was_delivered(item.slug, item.key, "order")
            if not known:  # Karla would answer order_not_found: they wait for the fixed order, as for one not read yet
                note = f"waiting for order {item.key}, which Karla refused (see `dlq list`)"
                self._defer(Item.build(left), note, anew=True)
                return []
        return [Item.build(left)] if left else []

    def _refused(self, item: Item, details: dict[str, Any], entries: list[dict[str, Any]], parcels: str | None = None) -> None:
        types = {e.get("type") for e in entries} | ({details.get("key")} if not entries else set())
        if types == {NOT_FOUND}:
            self._defer(item)
            return
        said = " ".join(str(v) for v in (details.get("status"), details.get("key")) if v)
        reason = "; ".join(_describe(e) for e in entries) or f"{said}: {details.get('message') or 'no message'}"
        info = answer(details.get("status"), details.get("key"), details.get("message"), entries)
        self._dead(item, f"Karla rejected {parcels + ' of ' if parcels else ''}order {item.key}: {reason} ({_NEXT})", info)

    def _defer(self, item: Item, note: str | None = None, anew: bool = False) -> None:
        """Karla does not know the order yet (or refused it): wait for it, but not forever. A fixed order,
        queued due at once, takes the waiting parts of its order with it (``due_items``: the earliest row).
        ``anew``: the order was refused just now; the wait for its fix starts now, however long the parts
        were queued before (Karla down for a day, a parcels file read a day before its orders file)."""
        now = self.now()
        overdue = hours_queued(item, self.now()) > self.settings.unknown_order_max_age_hours
        if not anew and overdue and not self._order_waits(item):
            self._dead(item, self._never_came(item), {"key": NOT_FOUND})
            return
        note = note or self._waiting(item)
        with self.db.transaction() as conn:
            if anew:
                Outbox(conn).restart_wait(item.rows, now)
            Outbox(conn).postpone(item.rows, now + suspects.backoff(item.rows), note)
        self.result.deferred += 1

    def _order_waits(self, item: Item) -> bool:
        """Whether the order was read meanwhile and waits to go (read while these parts were on the wire): they
        go with it (``due_items``) rather than into a letter its reading could no longer clear."""
        if any(r.part == "order" for r in item.rows):  # refused with its order: that one is no help
            return False
        with self.db.read() as conn:
            return any(r.part == "order" for rows in Outbox(conn).groups_of([(item.slug, item.key)]) for r in rows)

    def _waiting(self, item: Item) -> str:
        """What `status` says of parts waiting for their order: where to look when the source rejected it."""
        with self.db.read() as conn:
            rejected = DeadLetters(conn).of_order("source", item.slug, item.key)
        if rejected:
            return (f"{NOT_FOUND}: waiting for order {item.key}, which the source rejected (dead letter "
                    f"{rejected[0].id}): fix it as that letter says and they go with it")
        return f"{NOT_FOUND}: waiting for the order"

    def _never_came(self, item: Item) -> str:
        """Why trackings that waited for their order are given up, and what brings them: an order read cleanly
        takes them along (``connector.pages``: a later file, a row fixed where its own letter says)."""
        hours = f"{self.settings.unknown_order_max_age_hours:g} hours"
        with self.db.read() as conn:
            letters = DeadLetters(conn)
            rejected = letters.of_order("source", item.slug, item.key)
            refused = [letter for letter in letters.of_order("karla", item.slug, item.key) if "order" in (letter.payload or {})]
        waited = f"Karla does not know order {item.key}: its trackings waited more than {hours} for it"
        if rejected:
            return (f"{waited} after the source rejected it (see that order's letter, {rejected[0].id}, in `dlq list`) "
                    "and were not delivered: fix the order as its letter says and they go with it")
        if refused:
            return (f"{waited} after Karla refused it (see that order's letter, {refused[0].id}, in `dlq list`) and were "
                    "not delivered: fix the order at its source and they go with it; or fix it in Karla and `dlq retry` "
                    "this letter")
        return (f"Karla does not know order {item.key} and no order data for it arrived within {hours}; its trackings "
                "were not delivered: they go by themselves once the order is read, or `dlq retry` this letter once "
                "the order is in Karla by other means")


def hours_queued(item: Item, now: float) -> float:
    """How long the order has waited in the outbox, since its wait last restarted (``Outbox.restart_wait``):
    what ``unknown_order_max_age_hours`` measures. A suspect's age is ``suspects.hours_failing``."""
    return (now - min(r.first_enqueued_at for r in item.rows)) / 3600


def answer(status: int | None, key: str | None, message: str | None, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Karla letter's ``details``: what Karla answered, in one shape for `dlq list`."""
    return {"status": status, "key": key, "message": message, "errors": errors or []}


def _about_parcels(details: dict[str, Any], entries: list[dict[str, Any]]) -> bool:
    """Whether Karla's answer names only keys about a parcel (``errors[].type``, else its top-level ``key``)."""
    types = {e.get("type") for e in entries} if entries else {details.get("key")}
    return bool(types) and types <= _PARCEL_KEYS


def _parcel_names(rows: list[PendingRow]) -> str:
    names = [r.part.removeprefix("tracking:") for r in rows if r.part != "order"]
    return f"parcel{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _halves(items: list[Item]) -> list[list[Item]]:
    middle = len(items) // 2
    return [items[:middle], items[middle:]]


def _describe(entry: dict[str, Any]) -> str:
    loc = entry.get("loc") or []
    path = ".".join(str(p) for p in loc[2:] if p != "body") if len(loc) > 2 else ".".join(str(p) for p in loc if p != "body")
    kind = f" ({entry['type']})" if entry.get("type") else ""
    return f"{path or 'item'}: {entry.get('msg', '')}{kind}"
