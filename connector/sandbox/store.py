"""The sandbox's memory: orders per shop with upsert semantics (same tracking number = same shipment), and
each order's external_id unique in its shop, as karla-docs 002 asks ("it must be unique among all your orders")."""

from __future__ import annotations

import copy
import threading
import uuid
from typing import Any

__all__ = ["OrderStore"]


class OrderStore:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._shops: dict[str, dict[str, dict[str, Any]]] = {}
        self._external: dict[str, dict[str, str]] = {}  # per shop: external_id -> order number (no scan per item)

    def find(self, slug: str, ref: str, id_type: str) -> dict[str, Any] | None:
        orders = self._shops.get(slug, {})
        if id_type == "order_number":
            return orders.get(ref)
        if id_type == "external_id":
            number = self._external.get(slug, {}).get(ref)
            return orders.get(number) if number is not None else None
        field = "uuid" if id_type == "uuid" else id_type
        return next((o for o in orders.values() if str(o.get(field)) == ref), None)

    def exists_after(self, slug: str, item: dict[str, Any], created: set[tuple[str, str]]) -> bool:
        """Would a trackings-only ``item`` find its order, given orders created earlier in the same call?"""
        ref, id_type = str(item.get("id")), item.get("id_type", "order_number")
        return self.find(slug, ref, id_type) is not None or (id_type, ref) in created

    def clash(self, slug: str, item: dict[str, Any], claimed: dict[str, str]) -> str | None:
        """Why ``item`` is refused as ``order_exists`` (None: it is not): its order's external_id belongs to
        another order of the shop, stored or earlier in the same call (``claimed``: external_id -> order
        number, updated). Stored both, a search by external_id would find either order."""
        order = item.get("order")
        if not isinstance(order, dict) or not isinstance(order.get("order_number"), str):
            return None
        number = order["order_number"]
        external = order.get("external_id") or number  # "If not provided or empty, defaults to order_number"
        if not isinstance(external, str):
            return None  # refused by validation already
        id_type = item.get("id_type", "order_number")
        target = self.find(slug, str(item.get("id")), id_type) if isinstance(id_type, str) else None
        holder = claimed.get(external) or self._external.get(slug, {}).get(external, number)
        if holder in (number, target and target.get("order_number")):
            claimed[external] = number
            return None
        return (f"Order {number} has external_id {external!r}, which order {holder} of shop {slug!r} already has: "
                "an external_id must be unique among all your orders")

    def upsert(self, slug: str, item: dict[str, Any]) -> dict[str, Any]:
        """Apply one validated item (freshly parsed JSON, so it is stored without copying); the caller
        checked that a trackings-only item's order exists. Returns the stored order's identity."""
        orders = self._shops.setdefault(slug, {})
        ref, id_type = str(item["id"]), item.get("id_type", "order_number")
        order = self.find(slug, ref, id_type)
        if item.get("order") is not None:
            data = item["order"]
            data["external_id"] = data.get("external_id") or data["order_number"]
            if order is None:
                order = {"uuid": str(uuid.uuid4()), "trackings": []}
            elif order.get("order_number") != data["order_number"]:
                orders.pop(order["order_number"], None)
            index = self._external.setdefault(slug, {})
            old = order.get("external_id")
            if old is not None and index.get(old) == order["order_number"]:
                del index[old]  # the order's old external_id (or number) is free again
            order.update({k: v for k, v in data.items() if k != "trackings"})
            orders[order["order_number"]] = order
            index[order["external_id"]] = order["order_number"]
        assert order is not None
        given: set[str] = set()
        for tracking in item.get("trackings", []):
            if tracking["tracking_number"] not in given:  # a number repeated in one item "will be ignored" (karla-docs 002)
                given.add(tracking["tracking_number"])
                self._upsert_tracking(order, tracking)
        return {"uuid": order["uuid"], "order_number": order.get("order_number"), "trackings": len(order["trackings"])}

    @staticmethod
    def _upsert_tracking(order: dict[str, Any], tracking: dict[str, Any]) -> None:
        for index, known in enumerate(order["trackings"]):
            if known["tracking_number"] == tracking["tracking_number"]:
                order["trackings"][index] = {**known, **tracking}
                return
        order["trackings"].append(tracking)

    def orders(self, slug: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._shops.get(slug, {}))

    def search(self, slug: str, filters: dict[str, str], page: int, per_page: int) -> list[dict[str, Any]]:
        with self.lock:
            found = [o for o in self._shops.get(slug, {}).values()
                     if all(str(o.get(k) if k != "zip_code" else o.get("address", {}).get(k)) == v for k, v in filters.items())]
            return copy.deepcopy(found[(page - 1) * per_page : page * per_page])
