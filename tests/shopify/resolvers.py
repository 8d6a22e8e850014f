"""GraphQL resolvers for the subset of the Admin API the adapter uses.

graphql-core's default resolver reads dict keys and calls callables with the field's arguments, so a
"view" is a dict whose connection fields are functions. Anything the adapter asks for that a view
lacks resolves to null, and a null in a non-null field is an error, exactly as on Shopify.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError

from tests.shopify.search import SearchError, compile_search, fulfillment_status
from tests.shopify.store import tiebreak

if TYPE_CHECKING:
    from tests.shopify.fake_server import FakeShopify

__all__ = ["Resolvers"]

MAX_PAGE = 250


def _encode(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise GraphQLError("Invalid cursor for current pagination sort.") from None


def connection(items: list[Any], key: Callable[[int, Any], Any], *, first: int | None, after: str | None,
               bulk: bool, view: Callable[[Any], Any] = lambda x: x) -> dict[str, Any]:
    """Relay connection with keyset cursors: the next page is re-evaluated against the current data."""
    if first is None and not bulk:
        raise GraphQLError("you must provide one of first or last")
    if first is not None and not 0 < first <= MAX_PAGE:
        raise GraphQLError(f"The page size {first} is outside 1..{MAX_PAGE}")
    keyed = [(key(i, item), item) for i, item in enumerate(items)]
    if after:
        bound = _decode(after)
        keyed = [(k, item) for k, item in keyed if k > bound]
    page = keyed if first is None else keyed[:first]
    edges = [{"cursor": _encode(k), "node": view(item)} for k, item in page]
    return {
        "edges": edges,
        "nodes": [e["node"] for e in edges],
        "pageInfo": {
            "hasNextPage": len(page) < len(keyed), "hasPreviousPage": bool(after),
            "startCursor": edges[0]["cursor"] if edges else None, "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


class Resolvers:
    def __init__(self, fake: FakeShopify) -> None:
        self.fake = fake

    def root(self, *, bulk: bool = False) -> dict[str, Any]:
        fake = self.fake
        return {
            "orders": lambda info, first=None, after=None, sortKey=None, query=None, reverse=False, **_: self.orders(
                first, after, sortKey, query, reverse, bulk),
            "ordersCount": lambda info, query=None, limit=10000, **_: self.orders_count(query, limit),
            "order": lambda info, id: self._order_by_id(id, bulk),
            "fulfillment": lambda info, id: self._fulfillment_by_id(id, bulk),
            "node": lambda info, id: self.node(id, bulk),
            "nodes": lambda info, ids: [self.node(i, bulk) for i in ids],
            "shop": {"name": fake.shop_name, "myshopifyDomain": fake.domain, "plan": {"displayName": fake.plan}},
            "currentAppInstallation": {"accessScopes": [{"handle": s, "description": s} for s in fake.scopes]},
            "currentBulkOperation": lambda info, type=None: fake.bulk.current(),
            "bulkOperationRunQuery": lambda info, query, groupObjects=None: fake.bulk.run(query, groupObjects),
            "bulkOperationCancel": lambda info, id: fake.bulk.cancel(id),
        }

    # -- orders ------------------------------------------------------------------------------------
    def orders(self, first: int | None, after: str | None, sort_key: str | None, query: str | None, reverse: bool,
               bulk: bool) -> dict[str, Any]:
        if reverse:
            raise GraphQLError("the fake does not support reverse")
        try:
            predicate = compile_search(query)
        except SearchError as exc:
            raise GraphQLError(f"Invalid search query: {exc}") from None
        found = self.fake.store.select(predicate, sort_key)
        if sort_key in ("UPDATED_AT", "CREATED_AT"):
            field = "updatedAt" if sort_key == "UPDATED_AT" else "createdAt"
            key: Callable[[int, Any], Any] = lambda i, o: [o[field], tiebreak(o["id"])]  # noqa: E731
        else:
            key = lambda i, o: int(o["id"].rsplit("/", 1)[-1])  # noqa: E731
        self.fake.searches.append(query or "")
        return connection(found, key, first=first, after=after, bulk=bulk, view=lambda o: self.order_view(o, bulk))

    def orders_count(self, query: str | None, limit: int | None) -> dict[str, Any]:
        """``ordersCount``: capped at ``limit`` (then ``AT_LEAST``), like Shopify's."""
        try:
            found = len(self.fake.store.select(compile_search(query), None))
        except SearchError as exc:
            raise GraphQLError(f"Invalid search query: {exc}") from None
        capped = limit is not None and found > limit
        return {"count": limit if capped else found, "precision": "AT_LEAST" if capped else "EXACT"}

    def _order_by_id(self, gid: str, bulk: bool) -> dict[str, Any] | None:
        order = self.fake.store.orders.get(gid)
        return self.order_view(order, bulk) if order else None

    def _fulfillment_by_id(self, gid: str, bulk: bool) -> dict[str, Any] | None:
        try:
            order, fulfillment = self.fake.store.fulfillment(gid)
        except KeyError:
            return None
        return self.fulfillment_view(order, fulfillment, bulk)

    def node(self, gid: str, bulk: bool) -> dict[str, Any] | None:
        kind = gid.split("/")[-2] if gid.count("/") >= 3 else ""
        if kind == "Order":
            return self._order_by_id(gid, bulk)
        if kind == "Fulfillment":
            return self._fulfillment_by_id(gid, bulk)
        if kind == "BulkOperation":
            return self.fake.bulk.view(gid)
        return None

    def order_view(self, order: dict[str, Any], bulk: bool) -> dict[str, Any]:
        view = {k: v for k, v in order.items() if k not in ("lineItems", "fulfillments", "discountApplications", "deliveryMethod")}
        view["__typename"] = "Order"
        view["displayFulfillmentStatus"] = fulfillment_status(order)
        if self.fake.redact_customer_data:
            view.update(email=None, shippingAddress=None, customer=self._denied("Customer"))
        discounts = [_application(i, d) for i, d in enumerate(order.get("discountApplications") or [])]
        items = [{**li, "__typename": "LineItem", "discountAllocations": _allocations(li, discounts)} for li in order["lineItems"]]
        view["lineItems"] = lambda info, first=None, after=None, **_: connection(
            items, lambda i, x: i, first=first, after=after, bulk=bulk)
        view["discountApplications"] = lambda info, first=None, after=None, **_: connection(
            discounts, lambda i, x: i, first=first, after=after, bulk=bulk)
        view["fulfillmentOrders"] = lambda info, first=None, after=None, **_: connection(
            self._fulfillment_orders(order), lambda i, x: i, first=first, after=after, bulk=bulk)
        view["fulfillments"] = lambda info, first=None: [
            self.fulfillment_view(order, f, bulk) for f in order["fulfillments"][: first if first is not None else None]]
        return view

    def fulfillment_view(self, order: dict[str, Any], fulfillment: dict[str, Any], bulk: bool) -> dict[str, Any]:
        view = {k: v for k, v in fulfillment.items() if k not in ("trackingInfo", "fulfillmentLineItems")}
        view["__typename"] = "Fulfillment"
        tracking = fulfillment["trackingInfo"]
        view["trackingInfo"] = lambda info, first=None: tracking[: first if first is not None else None]
        line_items = {li["id"]: li for li in order["lineItems"]}
        rows = [{"id": r["id"], "quantity": r["quantity"], "lineItem": {**line_items[r["lineItemId"]], "__typename": "LineItem"}}
                for r in fulfillment["fulfillmentLineItems"]]
        view["fulfillmentLineItems"] = lambda info, first=None, after=None, **_: connection(
            rows, lambda i, x: i, first=first, after=after, bulk=bulk)
        return view

    def _fulfillment_orders(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """One per order, with the order's ``deliveryMethod``; none without a fulfillment-order scope, as on Shopify."""
        if not any(s.endswith("_merchant_managed_fulfillment_orders") for s in self.fake.scopes):  # the shop's own locations
            return []
        number = order["id"].rsplit("/", 1)[-1]
        method = {"id": f"gid://shopify/DeliveryMethod/{number}", "methodType": order.get("deliveryMethod", "SHIPPING")}
        return [{"__typename": "FulfillmentOrder", "id": f"gid://shopify/FulfillmentOrder/{number}", "deliveryMethod": method}]

    @staticmethod
    def _denied(what: str) -> Callable[..., Any]:
        def resolve(info: Any = None, **_: Any) -> Any:
            raise GraphQLError(f"This app is not approved to access the {what} object.", extensions={"code": "ACCESS_DENIED"})

        return resolve


def _application(index: int, application: dict[str, Any]) -> dict[str, Any]:
    """A discount application with Shopify's non-null fields: by default an order-wide code (ACROSS, ALL)."""
    return {"index": index, "targetType": "LINE_ITEM", "allocationMethod": "ACROSS", "targetSelection": "ALL", **application}


def _allocations(item: dict[str, Any], discounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A line item's ``discountAllocations``, stored as ``[{"index": application index, "amount": "15.00"}]``
    (the amount taken off the whole line)."""
    return [{"allocatedAmountSet": {"shopMoney": {"amount": a["amount"], "currencyCode": "EUR"},
                                    "presentmentMoney": {"amount": a["amount"], "currencyCode": "EUR"}},
             "discountApplication": discounts[a["index"]]} for a in item.get("discountAllocations") or []]
