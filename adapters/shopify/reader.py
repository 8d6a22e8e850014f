"""Pages of complete order nodes: paging an ``orders`` search, then filling what a page left out.

A page holds as many orders as fit under Shopify's 1000-point ceiling per request (``ORDER_NODE_COST``
each); if Shopify prices the query higher than we do, ``MAX_COST_EXCEEDED`` halves the page and the
request is repeated. Line items and discount applications beyond the nested first page are fetched per
order (fulfillment line items per fulfillment), so no order or parcel is ever sent with a truncated
product or discount list, and a poll sends exactly what the bulk full sync (which reads every nested
node) sends for the same order. Otherwise the two would disagree and re-send the order each time.

An order (or fulfillment) deleted between its page and a follow-up query comes back null there: the
order is dropped from the page. It is gone; sending it half-complete would be wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from adapters.shopify.client import QueryCostExceeded, ShopifyClient
from adapters.shopify.mapping import allocations_unknown, delivery_unknown, live_fulfillments
from adapters.shopify.queries import (
    DELIVERY_METHODS, DELIVERY_NODE_COST, DISCOUNT_ALLOCATIONS, DISCOUNT_ALLOCATIONS_COST, FULFILLMENT_LINE_ITEMS,
    FULFILLMENT_NODE_COST, MORE_DISCOUNTS, MORE_DISCOUNTS_COST, MORE_FULFILLMENT_LINE_ITEMS,
    MORE_FULFILLMENT_LINE_ITEMS_COST, MORE_LINE_ITEMS, MORE_LINE_ITEMS_COST, ORDER_NODE_COST, ORDERS, ORDERS_BY_ID,
    PROBE_BY_ID, PROBE_NODE_COST, PROBE_SEARCH,
)
from adapters.shopify.throttle import MAX_QUERY_COST
from connector.errors import FatalError

__all__ = ["OrderReader"]

Node = dict[str, Any]
_FULFILLMENTS_PER_REQUEST = max(1, int(MAX_QUERY_COST // FULFILLMENT_NODE_COST) - 3)
_PROBES_PER_REQUEST = 250  # 3 points each; Shopify takes at most 250 ids or items per request
_DELIVERIES_PER_REQUEST = int(MAX_QUERY_COST // DELIVERY_NODE_COST)
# nested connection -> (its follow-up query, that query's cost, the root field the query reads it from)
_MORE = {"lineItems": (MORE_LINE_ITEMS, MORE_LINE_ITEMS_COST, "order"),
         "discountApplications": (MORE_DISCOUNTS, MORE_DISCOUNTS_COST, "order"),
         "fulfillmentLineItems": (MORE_FULFILLMENT_LINE_ITEMS, MORE_FULFILLMENT_LINE_ITEMS_COST, "fulfillment")}


class OrderReader:
    def __init__(
        self, client: ShopifyClient, page_size: int, *, log: Any = None,
        on_errors: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.client = client
        self.first = max(1, min(page_size, int((MAX_QUERY_COST - 2) // ORDER_NODE_COST)))
        self.log = log or logging.getLogger(__name__)
        self.on_errors = on_errors

    def __repr__(self) -> str:
        return f"OrderReader(first={self.first})"

    def pages(self, search: str) -> Iterator[tuple[list[Node], bool]]:
        """``(complete nodes, has_next_page)`` for each page of the search, in Shopify's order."""
        after: str | None = None
        seen: set[str] = set()
        while True:
            connection = self._orders(search, after)
            page = self.complete(connection["nodes"])
            has_next = bool(connection["pageInfo"]["hasNextPage"])
            yield page, has_next
            if not has_next:
                return
            after = connection["pageInfo"]["endCursor"]
            if not after or after in seen:
                raise FatalError(f"Shopify repeated the page cursor {after!r} for {search!r}")
            seen.add(after)

    def _orders(self, search: str, after: str | None) -> dict[str, Any]:
        while True:
            try:
                variables = {"first": self.first, "after": after, "query": search}
                return self._data(ORDERS, variables, 2 + self.first * ORDER_NODE_COST)["orders"]
            except QueryCostExceeded as exc:
                self._shrink(exc)

    def _shrink(self, exc: QueryCostExceeded) -> None:
        if self.first == 1:
            raise exc
        self.first = max(1, self.first // 2)
        self.log.warning("%s; asking for %d orders per request instead", exc, self.first)

    def by_ids(self, gids: list[str]) -> Iterator[list[Node]]:
        """Complete order nodes for these ids, a cost-sized batch at a time (unknown ids are left out)."""
        start = 0
        while start < len(gids):
            chunk = gids[start : start + self.first]
            try:
                found = self._data(ORDERS_BY_ID, {"ids": chunk}, len(chunk) * ORDER_NODE_COST)["nodes"]
            except QueryCostExceeded as exc:
                self._shrink(exc)
                continue
            start += len(chunk)
            yield self.complete([node for node in found if node])

    def probe_ids(self, gids: list[str]) -> Iterator[Node | None]:
        """The parcel state of these orders (None for an id Shopify no longer knows)."""
        for start in range(0, len(gids), _PROBES_PER_REQUEST):
            chunk = gids[start : start + _PROBES_PER_REQUEST]
            yield from self._data(PROBE_BY_ID, {"ids": chunk}, len(chunk) * PROBE_NODE_COST)["nodes"]

    def probe_search(self, search: str) -> Iterator[Node]:
        after: str | None = None
        while True:
            variables = {"first": _PROBES_PER_REQUEST, "after": after, "query": search}
            connection = self._data(PROBE_SEARCH, variables, 2 + _PROBES_PER_REQUEST * PROBE_NODE_COST)["orders"]
            yield from connection["nodes"]
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]

    def _data(self, document: str, variables: dict[str, Any], cost: float) -> dict[str, Any]:
        result = self.client.query(document, variables, cost=cost)
        if result.errors and self.on_errors:
            self.on_errors(result.errors)
        return result.data

    # -- completing nested lists -------------------------------------------------------------------
    def complete(self, nodes: list[Node]) -> list[Node]:
        """Fetch what the nested first pages left out, in place: line items, discounts, parcel items.

        Returns the orders still there: one deleted meanwhile is left out.
        """
        return [node for node in nodes if self._complete(node)]

    def _complete(self, node: Node) -> bool:
        found = self._more(node, "lineItems") and self._more(node, "discountApplications")
        found = found and all(self._more(f, "fulfillmentLineItems") for f in node.get("fulfillments") or [])
        if not found:
            self.log.debug("Shopify order %s (%s) vanished while being read: left out", node.get("name"), node.get("id"))
        return found

    def _more(self, owner: Node, field: str) -> bool:
        """Follow ``owner[field]``'s cursor to its end, appending each page's nodes to the nested page.

        False: Shopify no longer knows ``owner`` (deleted since it was read; the query's root is null).
        """
        document, cost, root = _MORE[field]
        connection = owner.get(field)
        while connection and (connection.get("pageInfo") or {}).get("hasNextPage"):
            variables = {"id": owner["id"], "after": connection["pageInfo"]["endCursor"]}
            found = self._data(document, variables, cost)[root]
            if found is None:
                return False
            more = found[field]
            connection["nodes"] = list(connection.get("nodes") or []) + list(more.get("nodes") or [])
            connection["pageInfo"] = more["pageInfo"]
        return True

    def fill_delivery_methods(self, nodes: list[Node]) -> None:
        """Orders without a shipping address get their fulfillment orders' delivery methods, in place: a pickup
        needs no address (it is skipped), any other such order lacks one (rejected). Asked once per order."""
        wanted = {node["id"]: node for node in nodes if delivery_unknown(node)}
        ids = list(wanted)
        for start in range(0, len(ids), _DELIVERIES_PER_REQUEST):
            chunk = ids[start : start + _DELIVERIES_PER_REQUEST]
            for found in self._data(DELIVERY_METHODS, {"ids": chunk}, len(chunk) * DELIVERY_NODE_COST)["nodes"]:
                if found and found.get("id") in wanted:
                    wanted[found["id"]]["fulfillmentOrders"] = found.get("fulfillmentOrders")
        for node in wanted.values():
            node.setdefault("fulfillmentOrders", None)  # deleted meanwhile: not asked again

    def fill_discount_allocations(self, nodes: list[Node]) -> None:
        """Orders with a fixed "per item" code get what each such code took off (``allocatedByIndex``:
        application index -> sum of its line-item allocations), in place. Asked once per order; an order
        deleted meanwhile keeps the code's per-unit value."""
        for node in nodes:
            if allocations_unknown(node):
                node["allocatedByIndex"] = self._allocations(node["id"])

    def _allocations(self, gid: str) -> dict[int, Decimal]:
        totals: dict[int, Decimal] = {}
        after: str | None = None
        while True:
            found = self._data(DISCOUNT_ALLOCATIONS, {"id": gid, "after": after}, DISCOUNT_ALLOCATIONS_COST)["order"]
            if found is None:
                return totals
            for item in found["lineItems"]["nodes"]:
                for allocation in item.get("discountAllocations") or []:
                    index = (allocation.get("discountApplication") or {}).get("index")
                    amount = ((allocation.get("allocatedAmountSet") or {}).get("shopMoney") or {}).get("amount")
                    if index is not None and amount not in (None, ""):
                        totals[index] = totals.get(index, Decimal(0)) + Decimal(str(amount))
            page = found["lineItems"]["pageInfo"]
            if not page["hasNextPage"]:
                return totals
            after = page["endCursor"]

    def fill_fulfillment_line_items(self, nodes: list[Node]) -> list[Node]:
        """Bulk results carry fulfillments without their line items: fetch them for parcels we send.

        Returns the orders still there (see ``complete``)."""
        wanted = {
            f["id"]: f for node in nodes for f in live_fulfillments(node)
            if "fulfillmentLineItems" not in f and any(t.get("number") for t in f.get("trackingInfo") or [])
        }
        ids = list(wanted)
        for start in range(0, len(ids), _FULFILLMENTS_PER_REQUEST):
            chunk = ids[start : start + _FULFILLMENTS_PER_REQUEST]
            for found in self._data(FULFILLMENT_LINE_ITEMS, {"ids": chunk}, len(chunk) * FULFILLMENT_NODE_COST)["nodes"]:
                if found and found.get("id") in wanted:
                    wanted[found["id"]]["fulfillmentLineItems"] = found["fulfillmentLineItems"]
        gone = {fid for fid, f in wanted.items() if "fulfillmentLineItems" not in f}  # null: deleted since the export
        for fid, fulfillment in wanted.items():
            if fid not in gone and not self._more(fulfillment, "fulfillmentLineItems"):
                gone.add(fid)
        kept = [node for node in nodes if not any(f.get("id") in gone for f in node.get("fulfillments") or [])]
        if len(kept) < len(nodes):
            self.log.debug("Shopify: %d orders vanished while being read: left out", len(nodes) - len(kept))
        return kept
