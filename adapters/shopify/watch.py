"""Orders that may still gain a tracking number without their ``updatedAt`` moving.

Shopify does not reliably bump an order's ``updatedAt`` when a fulfillment is created or its tracking
changes (estuary/connectors#4338; community reports). Searching ``fulfillment_status:unshipped`` each
poll is not enough: the moment the parcel ships, the order is fulfilled and leaves that search, so the
poll that could see the new tracking number no longer finds it. So the cursor remembers every order that
still awaits a parcel or a tracking number (created within ``recheck_unfulfilled_days``), with a
fingerprint of its parcels. Each poll probes them cheaply (3 cost points each) and reads in full only
those whose fingerprint changed.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from adapters.shopify.cursor import gid_number, parse_time
from adapters.shopify.mapping import awaits_tracking, live_fulfillments

__all__ = ["Watch", "WATCH_LIMIT", "awaits_parcels", "fingerprint"]

WATCH_LIMIT = 5000  # newest orders kept; the nightly full sync covers any overflow
# Shops whose watch overflows, warned about once per process and episode: the engine builds a Watch per poll.
_OVERFLOWING: set[str] = set()
_DONE = {"FULFILLED", "RESTOCKED"}


def fingerprint(node: dict[str, Any]) -> int:
    """Changes whenever a live parcel or one of its tracking numbers appears, changes or goes."""
    parcels = sorted(
        (str(f.get("id")), sorted(str(t.get("number")) for t in f.get("trackingInfo") or [] if t.get("number")))
        for f in live_fulfillments(node)
    )
    return zlib.crc32(json.dumps(parcels).encode())


def awaits_parcels(node: dict[str, Any]) -> bool:
    """Not cancelled, and not fully shipped or shipped without a tracking number."""
    if node.get("cancelledAt"):
        return False
    return node.get("displayFulfillmentStatus") not in _DONE or awaits_tracking(node)


class Watch:
    def __init__(
        self, entries: Mapping[int, int | None], *, since: datetime, enabled: bool = True, log: Any = None, shop: str = "",
    ) -> None:
        self._entries: dict[int, int | None] = dict(entries) if enabled else {}
        self.since, self.enabled = since, enabled
        # A full stored watch kept only the newest orders: older ones are the overflow, left to the full sync.
        self.floor: int | None = min(self._entries) if len(self._entries) >= WATCH_LIMIT else None
        self.log = log or logging.getLogger(__name__)
        self.shop = shop

    def __repr__(self) -> str:
        return f"Watch({len(self._entries)} orders since {self.since:%Y-%m-%d})"

    def __contains__(self, number: object) -> bool:
        return number in self._entries

    def overflow(self, number: int) -> bool:
        """An order older than every order a full watch keeps: reading it each poll would only have it
        dropped again when the watch is stored, so it waits for the full sync like the warning says."""
        return self.floor is not None and number < self.floor

    def known(self) -> dict[int, int | None]:
        return dict(self._entries)

    def observe(self, nodes: Iterable[dict[str, Any] | None]) -> None:
        """Watch orders (full or probed) that still await parcels; drop the rest."""
        if not self.enabled:
            return
        for node in nodes:
            if not node:
                continue
            number = gid_number(node.get("id"))
            recent = bool(node.get("createdAt")) and parse_time(node["createdAt"]) >= self.since
            if recent and awaits_parcels(node):
                self._entries[number] = fingerprint(node)
            else:
                self._entries.pop(number, None)

    def forget(self, numbers: Iterable[int]) -> None:
        """Orders Shopify no longer returns (deleted, or beyond the visible history)."""
        for number in numbers:
            self._entries.pop(number, None)

    def entries(self) -> tuple[tuple[int, int | None], ...]:
        newest = sorted(self._entries, reverse=True)
        if len(newest) <= WATCH_LIMIT and self.floor is None:  # not full when stored either: the overflow is over
            _OVERFLOWING.discard(self.shop)  # a later one is news again
        elif self.shop not in _OVERFLOWING:
            _OVERFLOWING.add(self.shop)
            self.log.warning("%s%d orders await parcels; watching the newest %d (the full sync covers the rest)",
                             f"Shopify {self.shop}: " if self.shop else "", len(newest), WATCH_LIMIT)
        return tuple((n, self._entries[n]) for n in sorted(newest[:WATCH_LIMIT]))
