"""The ``orders`` cursor, and why it only ever points at the end of a whole timestamp group.

Cursor (JSON): ``{"updated_at": "2026-11-20T10:00:00Z", "id": "gid://shopify/Order/123", "watch": {..}}``
means "every order with (updatedAt, id) <= this was emitted". The next read asks for
``updated_at >= updated_at`` (inclusive: Shopify's ``>`` is reported to act as ``>=`` anyway) and skips
orders at or below the cursor.

Shopify documents ``sortKey: UPDATED_AT`` but not the order of orders sharing one ``updatedAt``
(seconds resolution, so bulk edits and imports create large ties). Checkpointing at the last emitted
order of a page would therefore be unsafe: a tie-mate with a smaller id could still come on the next
page and then be skipped after a restart. So a checkpoint only moves when a group is known complete (a
later timestamp followed it, or the window ended), and its id is the group's largest. A page that ends
inside a group repeats the previous checkpoint; re-reading that group after a crash is harmless.

``watch`` maps order ids that still await a parcel or a tracking number to a fingerprint of their
parcels (see ``watch.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["CursorState", "GroupTracker", "Position", "gid_number", "iso", "node_position", "parse_time"]


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def gid_number(gid: str | None) -> int:
    """``gid://shopify/Order/123`` -> 123 (-1 for none), compared as numbers, never as strings."""
    if not gid:
        return -1
    tail = str(gid).rsplit("/", 1)[-1].split("?", 1)[0]
    return int(tail) if tail.isdigit() else -1


@dataclass(frozen=True, order=True, slots=True)
class Position:
    updated_at: datetime
    number: int = -1  # numeric order id; -1: nothing at this timestamp emitted yet

    def gid(self) -> str | None:
        return f"gid://shopify/Order/{self.number}" if self.number >= 0 else None


def node_position(node: dict[str, Any]) -> Position:
    return Position(parse_time(node["updatedAt"]), gid_number(node.get("id")))


@dataclass(frozen=True, slots=True)
class CursorState:
    position: Position
    watch: tuple[tuple[int, int | None], ...] = field(default=())  # (order id, parcel fingerprint)

    @classmethod
    def parse(cls, text: str) -> CursorState:
        data = json.loads(text)
        position = Position(parse_time(data["updated_at"]), gid_number(data.get("id")))
        watch = data.get("watch") or {}
        if isinstance(watch, list):  # ids without fingerprints: each is read once more
            watch = {str(n): None for n in watch}
        return cls(position, tuple((int(n), fp) for n, fp in sorted(watch.items(), key=lambda kv: int(kv[0]))))

    def dump(self) -> str:
        data: dict[str, Any] = {"updated_at": iso(self.position.updated_at), "id": self.position.gid()}
        if self.watch:
            data["watch"] = {str(n): fp for n, fp in self.watch}
        return json.dumps(data, separators=(",", ":"))


class GroupTracker:
    """Follows orders in ``updatedAt`` order and knows the last position that is safe to resume from."""

    def __init__(self, start: Position) -> None:
        self.checkpoint = start
        self._group: datetime | None = None
        self._largest = -1
        self._max: Position | None = None
        self.disordered = False

    def see(self, position: Position) -> None:
        self._max = position if self._max is None else max(self._max, position)
        if self._group is None or position.updated_at > self._group:
            if self._group is not None and not self.disordered:
                self.checkpoint = max(self.checkpoint, Position(self._group, self._largest))
            self._group, self._largest = position.updated_at, position.number
        elif position.updated_at == self._group:
            self._largest = max(self._largest, position.number)
        else:  # Shopify broke its own sort: trust nothing until the window is complete
            self.disordered = True

    def finish(self) -> Position:
        """The window was read to its end: everything up to the largest position seen was emitted."""
        if self._max is not None:
            self.checkpoint = max(self.checkpoint, self._max)
        return self.checkpoint
