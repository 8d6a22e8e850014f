"""Each poll, find the orders whose parcels changed although their ``updatedAt`` did not.

1. Probe the watched orders by id, and search not (fully) shipped orders of the recheck window (finds
   orders the watch does not know, e.g. after a fulfillment was cancelled). Beyond ``WATCH_LIMIT``, orders
   older than the stored watch are the overflow: ignored, as the full sync covers them.
2. An order whose parcel fingerprint differs from the remembered one, or that the watch did not know,
   is read in full and yielded; the engine's change detection sends only what really changed.
3. Orders Shopify no longer returns leave the watch; probed orders that no longer await parcels too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from adapters.shopify.cursor import gid_number, iso
from adapters.shopify.queries import unshipped_search
from adapters.shopify.reader import OrderReader
from adapters.shopify.watch import Watch, fingerprint

__all__ = ["changed_orders"]

Node = dict[str, Any]


def _gid(number: int) -> str:
    return f"gid://shopify/Order/{number}"


def changed_orders(reader: OrderReader, watch: Watch, emitted: set[str]) -> Iterator[list[Node]]:
    """Full nodes of orders whose parcels changed; ``emitted`` (orders already read) grows as we go."""
    if not watch.enabled:
        return
    remembered = {n: fp for n, fp in watch.known().items() if _gid(n) not in emitted}
    probes: dict[int, Node] = {}
    since = iso(watch.since)
    for status in ("unshipped", "partial"):
        for node in reader.probe_search(unshipped_search(since, status)):
            number = gid_number(node["id"])
            if not watch.overflow(number):
                probes[number] = node
    unprobed = [_gid(n) for n in remembered if n not in probes]
    for node in reader.probe_ids(unprobed):
        if node:
            probes[gid_number(node["id"])] = node
    watch.forget(set(remembered) - set(probes))

    changed = []
    for number, node in probes.items():
        if node["id"] in emitted:
            continue
        if number in remembered and remembered[number] == fingerprint(node):
            watch.observe([node])
        else:
            changed.append(node["id"])
    for nodes in reader.by_ids(changed):
        nodes = [n for n in nodes if n and n["id"] not in emitted]
        emitted.update(n["id"] for n in nodes)
        watch.observe(nodes)
        if nodes:
            yield nodes
