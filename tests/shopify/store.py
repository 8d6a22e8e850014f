"""The fake shop's state: orders with line items, fulfillments and tracking, changed by the tests.

Orders are stored in the shape the GraphQL views serve (camelCase, connections as plain lists).
Every change can bump the order's ``updatedAt`` (``touch=True``) or leave it alone, because Shopify does
not reliably bump it for fulfillment and tracking changes. ``lag_index`` keeps an order out of searches
for a while (Shopify's search index trails its database; lookups by id are current). Orders sharing one ``updatedAt`` are returned
in a stable pseudo-random order (not by id), since Shopify documents no tie-break.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["FakeClock", "FakeStore", "iso", "tiebreak"]


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tiebreak(gid: str) -> str:
    return hashlib.sha1(gid.encode()).hexdigest()


class FakeClock:
    """One clock for the fake's bucket and tokens and the adapter's sleep/monotonic/clock.

    Sleeping advances it instantly, so waits can be asserted and tests never sleep for real.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.start = start or datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)
        self.elapsed = 0.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return 1000.0 + self.elapsed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.elapsed += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.elapsed += seconds


class FakeStore:
    def __init__(self, clock: FakeClock, lock: threading.RLock) -> None:
        self.clock, self.lock = clock, lock
        self.orders: dict[str, dict[str, Any]] = {}
        self.unsearchable_until: dict[str, datetime] = {}

    def _stamp(self, when: datetime | str | None) -> str:
        if isinstance(when, str):
            return when
        return iso(when or self.clock.now())

    def add(self, order: dict[str, Any], *, updated: datetime | str | None = None) -> dict[str, Any]:
        with self.lock:
            order = copy.deepcopy(order)
            if updated is not None or "updatedAt" not in order:
                order["updatedAt"] = self._stamp(updated)
            order.setdefault("createdAt", order["updatedAt"])
            order.setdefault("processedAt", order["createdAt"])
            order.setdefault("test", False)
            for fulfillment in order["fulfillments"]:
                fulfillment.setdefault("createdAt", order["updatedAt"])
                fulfillment.setdefault("updatedAt", fulfillment["createdAt"])
            self.orders[order["id"]] = order
            return order

    def order(self, gid: str) -> dict[str, Any]:
        return self.orders[gid]

    def update(self, gid: str, *, touch: bool = True, when: datetime | str | None = None, **fields: Any) -> dict[str, Any]:
        with self.lock:
            order = self.orders[gid]
            order.update(copy.deepcopy(fields))
            if touch:
                order["updatedAt"] = self._stamp(when)
            return order

    def add_fulfillment(self, gid: str, fulfillment: dict[str, Any], *, touch: bool = True) -> dict[str, Any]:
        with self.lock:
            fulfillment = copy.deepcopy(fulfillment)
            fulfillment.setdefault("createdAt", self._stamp(None))
            fulfillment.setdefault("updatedAt", fulfillment["createdAt"])
            self.orders[gid]["fulfillments"].append(fulfillment)
            if touch:
                self.orders[gid]["updatedAt"] = self._stamp(None)
            return fulfillment

    def add_tracking(self, fulfillment_gid: str, number: str, company: str | None = None, url: str | None = None,
                     *, touch: bool = False) -> None:
        """``fulfillmentTrackingInfoUpdate``: the fulfillment changes; the order, by default, does not."""
        with self.lock:
            order, fulfillment = self.fulfillment(fulfillment_gid)
            fulfillment["trackingInfo"].append({"number": number, "company": company, "url": url})
            fulfillment["updatedAt"] = self._stamp(None)
            if touch:
                order["updatedAt"] = self._stamp(None)

    def fulfillment(self, gid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        for order in self.orders.values():
            for fulfillment in order["fulfillments"]:
                if fulfillment["id"] == gid:
                    return order, fulfillment
        raise KeyError(gid)

    def lag_index(self, gid: str, seconds: float) -> None:
        """The order's latest change reaches the search index only ``seconds`` from now."""
        with self.lock:
            self.unsearchable_until[gid] = self.clock.now() + timedelta(seconds=seconds)

    def select(self, predicate: Callable[[dict[str, Any]], bool], sort_key: str | None) -> list[dict[str, Any]]:
        now = self.clock.now()
        found = [o for o in self.orders.values() if predicate(o) and self.unsearchable_until.get(o["id"], now) <= now]
        if sort_key in ("UPDATED_AT", "CREATED_AT"):
            field = "updatedAt" if sort_key == "UPDATED_AT" else "createdAt"
            return sorted(found, key=lambda o: (o[field], tiebreak(o["id"])))
        return sorted(found, key=lambda o: int(o["id"].rsplit("/", 1)[-1]))
