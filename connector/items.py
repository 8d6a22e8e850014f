"""From outbox rows to bulk items and batches: the shapes delivery sends, built in key order.

Kept apart from ``delivery`` (which decides what to do with Karla's answers) because ``sync --dry-run``
prints exactly these items without sending them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from state import Outbox, PendingRow, StateDB

__all__ = ["FETCH", "Item", "batches", "pending_groups"]

FETCH = 2000  # outbox rows per read


@dataclass(slots=True)
class Item:
    """One order's pending parts, serialised once into the bytes of a bulk array element."""

    slug: str
    key: str
    rows: list[PendingRow]
    body: bytes

    @classmethod
    def build(cls, rows: list[PendingRow]) -> Item:
        first = rows[0]
        order = next((r.payload for r in rows if r.part == "order"), None)
        trackings = ",".join(r.payload for r in rows if r.part != "order")
        text = f'{{"id":{json.dumps(first.order_key, ensure_ascii=False)},"id_type":"{first.id_type}"'
        text += f',"order":{order}' if order is not None else ""
        text += f',"trackings":[{trackings}]}}'
        return cls(first.slug, first.order_key, rows, text.encode())


def pending_groups(db: StateDB) -> Iterator[list[PendingRow]]:
    """Pending rows grouped per (slug, order), streamed in key order with bounded memory."""
    after: tuple[str, str] | None = None
    limit = FETCH
    while True:
        with db.read() as conn:
            rows = Outbox(conn).scan(after, limit)
        if not rows:
            return
        groups: list[list[PendingRow]] = []
        for row in rows:
            if groups and (groups[-1][0].slug, groups[-1][0].order_key) == (row.slug, row.order_key):
                groups[-1].append(row)
            else:
                groups.append([row])
        if len(rows) == limit and len(groups) == 1:
            limit *= 2  # one order with more parts than a fetch: read it whole
            continue
        if len(rows) == limit:
            groups.pop()  # the last group may continue in the next fetch
        yield from groups
        after = (groups[-1][0].slug, groups[-1][0].order_key)
        limit = FETCH


def batches(items: Iterator[Item], max_items: int, max_bytes: int, *, partial: bool = True) -> Iterator[tuple[str, list[Item]]]:
    """Items cut into batches of one shop each, within both limits; a batch goes when the next item of
    its shop would break a limit. Shops may interleave (early delivery takes orders in the order they
    were queued, and a Shopware source gives each sales channel its shop), so each shop has its own open
    batch. ``partial=False`` keeps back each shop's last batch unless it is full (it stays pending)."""
    open_batches: dict[str, tuple[list[Item], int]] = {}
    for item in items:
        batch, size = open_batches.get(item.slug, ([], 2))
        if batch and (len(batch) >= max_items or size + 1 + len(item.body) > max_bytes):
            yield item.slug, batch
            batch, size = [], 2
        batch.append(item)
        open_batches[item.slug] = (batch, size + len(item.body) + (1 if len(batch) > 1 else 0))
    for slug, (batch, _) in open_batches.items():
        if partial or len(batch) >= max_items:
            yield slug, batch
