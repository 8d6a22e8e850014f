"""From outbox rows to bulk items and batches: the shapes delivery sends, built in key order.

Kept apart from ``delivery`` (which decides what to do with Karla's answers) because ``sync --dry-run``
prints exactly these items without sending them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from state import Outbox, PendingRow, StateDB

__all__ = ["FETCH", "BatchCap", "Item", "batches", "body_size", "pending_groups"]

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
        trackings = b",".join(r.payload for r in rows if r.part != "order")
        head = f'{{"id":{json.dumps(first.order_key, ensure_ascii=False)},"id_type":"{first.id_type}"'.encode()
        # the payloads as the state file holds them (UTF-8: ``PENDING_COLUMNS`` reads them as bytes), not decoded and encoded again
        body = b"".join((head, b',"order":' if order is not None else b"", order or b"", b',"trackings":[', trackings, b"]}"))
        return cls(first.slug, first.order_key, rows, body)

    def named(self, loc: Any) -> list[PendingRow] | None:
        """The rows an ``errors[].loc`` of this item names (``["body", i, "order", ...]``: its order part;
        ``["body", i, "trackings", j, ...]``: the part sent as ``trackings[j]``, built in row order above);
        None when it names the item as a whole (its ``id``) or a shape not understood."""
        path = loc[2:] if isinstance(loc, list) else []
        if path[:1] == ["order"]:
            return [r for r in self.rows if r.part == "order"] or None
        if path[:1] == ["trackings"] and len(path) > 1 and type(path[1]) is int:
            trackings = [r for r in self.rows if r.part != "order"]
            return [trackings[path[1]]] if 0 <= path[1] < len(trackings) else None
        return None


@dataclass(slots=True)
class BatchCap:
    """Karla's own batch limit in orders, learnt from its 413 answers: once it refused a batch as too large,
    later batches stay within the most orders it accepted in one request since, so that every drain is not
    refused and split again (the settings may allow more than Karla does). Never raised above what Karla
    accepted: no probing. Bytes are not learnt: a byte cap learnt from small orders binds later, bigger
    ones Karla takes by count, and a merchant told a ``bulk_max_bytes`` is still refused by a count limit."""

    refused: int | None = None  # the fewest orders refused in one request as too large, since the cap was unlearnt
    items: int | None = None  # the most orders accepted in one request since, always fewer than ``refused``
    told: bool = False  # the merchant was told (once per process)

    def too_large(self, items: int) -> None:
        if items < 2:  # one order too large on its own: its letter. The refusals that split its batches down
            self.refused = self.items = None  # to it said nothing of a batch limit: forget them
            return
        if self.items is not None and items <= self.items:
            self.items = None  # Karla's limit went down: learn it again
        self.refused = items if self.refused is None else min(self.refused, items)

    def accepted(self, items: int) -> None:
        if self.refused is not None and items < self.refused:  # else a batch sent before the refusal
            self.items = max(self.items or 0, items)

    def news(self) -> str | None:
        """Once per process, when the limit is known: the setting that spares the next process the refusals."""
        if self.told or self.refused is None or self.items is None:
            return None
        self.told = True
        return (f"Karla refused {self.refused} orders in one request as too large (HTTP 413); this process now sends "
                f"at most {self.items} orders per request, the most Karla accepted since. Set [karla] bulk_max_orders = "
                f"{self.items} in the config, or every new process is refused and splits again")

    def cut(self, items: list[Item]) -> list[list[Item]]:
        """A batch refused as too large: within what Karla accepted since (a batch in flight when that was
        learnt), else in halves."""
        parts = [b for _, b in batches(iter(items), self.limit(len(items)), body_size(items))]
        return parts if len(parts) > 1 else [items[: len(items) // 2], items[len(items) // 2 :]]

    def limit(self, max_items: int) -> int:
        """The configured orders per request, within what Karla was seen to accept."""
        return max_items if self.items is None else min(max_items, self.items)


def body_size(items: list[Item]) -> int:
    """The bytes of a bulk request of these items (``[a,b]``), as ``batches`` counts them."""
    return 2 + sum(len(i.body) for i in items) + max(len(items) - 1, 0)


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


def batches(
    items: Iterator[Item], max_items: int, max_bytes: int, *, partial: bool = True, cap: BatchCap | None = None,
) -> Iterator[tuple[str, list[Item]]]:
    """Items cut into batches of one shop each, within both limits; a batch goes when the next item of
    its shop would break a limit. Shops may interleave (early delivery takes orders in the order they
    were queued, and a Shopware source gives each sales channel its shop), so each shop has its own open
    batch. ``partial=False`` keeps back each shop's last batch unless it is full (it stays pending).
    ``cap``: Karla's own limit, looked at per item, as a 413 answered meanwhile may lower it."""
    configured = max_items
    open_batches: dict[str, tuple[list[Item], int]] = {}
    for item in items:
        max_items = cap.limit(configured) if cap else configured
        batch, size = open_batches.get(item.slug, ([], 2))
        if batch and (len(batch) >= max_items or size + 1 + len(item.body) > max_bytes):
            yield item.slug, batch
            batch, size = [], 2
        batch.append(item)
        open_batches[item.slug] = (batch, size + len(item.body) + (1 if len(batch) > 1 else 0))
    max_items = cap.limit(configured) if cap else configured
    for slug, (batch, _) in open_batches.items():
        if partial or len(batch) >= max_items:
            yield slug, batch
