"""Shopify order nodes -> Karla records.

- ``name`` ``#1001`` is the order name; its number (``1001``) is Karla's ``order_number`` and the record
  key; ``external_id`` is Shopify's numeric order id.
- Products and totals are what the order holds now: ``currentQuantity`` and the ``current*Set`` amounts,
  which leave out units removed by an order edit or refunded (``quantity`` and ``total*Set`` keep
  them). A line with nothing left is not sent (``products``).
- Each tracking number of a fulfillment is one parcel carrying that fulfillment's line items as the order's
  products (image, price, ids) with the quantity shipped in it; cancelled and failed fulfillments are not sent.
- Protected customer data that Shopify withholds comes back null: the order is sent without it. Without
  a zip code Karla cannot create the order, so such an order becomes a ``Rejected`` saying why.
- Local pickups and in-store (POS) sales have no shipping address although ``requiresShipping`` is true
  (it only means "has shipping lines or items that need shipping"): they are skipped like test orders,
  not rejected, as there is no parcel for Karla to follow. Told apart by ``sourceName`` ``pos`` or the
  fulfillment orders' ``deliveryMethod.methodType`` (fetched only for orders without an address). So are
  orders with nothing to ship (``requiresShipping`` false: e-books, gift cards, services) and no address.
- ``sub_total_price`` is Karla's "items before shipping and discounts": the sum of the line items'
  ``originalUnitPriceSet`` × ``currentQuantity``, not Shopify's ``currentSubtotalPriceSet`` (after discounts).
- Test orders and cancelled orders are skipped by default (``skip_reason``): Karla would treat them as
  live and run placed-order campaigns for them. Karla's order has no cancelled state to send instead, so
  an order sent before its cancellation simply stops being updated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from adapters.base import Record, Rejected
from adapters.shopify.cursor import gid_number
from adapters.shopify.products import amount as _amount, clean as _clean, order_products, parcel_products, subtotal
from connector.karla.carriers import carrier_fields
from connector.karla.models import OrderPlacement, Tracking, explain

__all__ = [
    "MappingOptions", "map_order", "live_fulfillments", "order_number", "skip_reason", "withheld", "awaits_tracking",
    "collected", "delivery_unknown", "allocations_unknown", "per_item",
]

_NOT_SHIPPED = {"CANCELLED", "ERROR", "FAILURE"}
_DIGITS = re.compile(r"\d+")
_NO_ADDRESS_NEEDED = {"PICK_UP", "RETAIL", "NONE"}  # DeliveryMethodType values without a parcel to a customer


@dataclass(frozen=True, slots=True)
class MappingOptions:
    carriers: Mapping[str, str] = field(default_factory=dict)
    tags_as_segments: bool = True
    segment_prefix: str = ""
    skip_test_orders: bool = True
    skip_cancelled: bool = True


def skip_reason(node: dict[str, Any], options: MappingOptions) -> str | None:
    """Why this order is not sent at all (None: send it). A Karla order is always live: there is no test flag
    or cancelled state to send, and Karla's own Shopware plugin leaves cancelled orders out by default."""
    if options.skip_test_orders and node.get("test"):
        return "a test order"
    if options.skip_cancelled and node.get("cancelledAt"):
        return "cancelled"
    if collected(node):
        return "picked up or sold in store (no shipping address, no parcel)"
    digital = node.get("requiresShipping") is False and not node.get("shippingAddress")  # with one: sent as usual
    return "nothing to ship (digital goods or services, no shipping address)" if digital else None


def order_number(node: dict[str, Any]) -> str:
    """The numeric part of the name (``#1001``, ``EU1001``); the whole name when that is ambiguous."""
    name = str(node.get("name") or "").strip().lstrip("#").strip()
    runs = _DIGITS.findall(name)
    if len(runs) == 1:
        return runs[0]
    return name or str(node.get("legacyResourceId") or gid_number(node.get("id")))


def nodes(connection: Any) -> list[dict[str, Any]]:
    if not connection:
        return []
    if "nodes" in connection:
        return list(connection["nodes"] or [])
    return [edge["node"] for edge in connection.get("edges") or []]


def live_fulfillments(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in node.get("fulfillments") or [] if str(f.get("status") or "").upper() not in _NOT_SHIPPED]


def awaits_tracking(node: dict[str, Any]) -> bool:
    """A shipped fulfillment without a tracking number: the number may be added later, silently."""
    return any(
        f.get("requiresShipping") is not False and not any(t.get("number") for t in f.get("trackingInfo") or [])
        for f in live_fulfillments(node)
    )


def _addressless(node: dict[str, Any]) -> bool:
    return node.get("requiresShipping") is not False and not node.get("shippingAddress")


def delivery_methods(node: dict[str, Any]) -> set[str]:
    """The fulfillment orders' ``methodType``s; empty when not fetched or not visible (no fulfillment-order scope)."""
    return {str((fo.get("deliveryMethod") or {}).get("methodType") or "") for fo in nodes(node.get("fulfillmentOrders"))} - {""}


def collected(node: dict[str, Any]) -> bool:
    """Picked up or bought in a store: no address because none is needed. With an address it maps as usual."""
    if not _addressless(node):
        return False
    if str(node.get("sourceName") or "").lower() == "pos":
        return True
    methods = delivery_methods(node)
    return bool(methods) and methods <= _NO_ADDRESS_NEEDED


def delivery_unknown(node: dict[str, Any]) -> bool:
    """An order without an address whose delivery method has not been asked for yet (see ``DELIVERY_METHODS``)."""
    return _addressless(node) and "fulfillmentOrders" not in node and str(node.get("sourceName") or "").lower() != "pos"


def withheld(node: dict[str, Any]) -> bool:
    """An order to ship without an address that is no pickup: Shopify withheld protected customer data (or lost it)."""
    return _addressless(node) and not collected(node)


def _address(node: dict[str, Any]) -> dict[str, Any]:
    a = node.get("shippingAddress") or {}
    line1, line2 = a.get("address1"), a.get("address2")
    return _clean({
        "zip_code": a.get("zip"), "name": a.get("name"), "company": a.get("company"),
        "address_line_1": line1, "address_line_2": line2, "street": ", ".join(p for p in (line1, line2) if p),
        "city": a.get("city"), "province": a.get("province"), "province_code": a.get("provinceCode"),
        "country": a.get("country"), "country_code": a.get("countryCodeV2"), "phone": a.get("phone"),
    })


def _index(application: dict[str, Any]) -> tuple[bool, int]:
    """Shopify's order of the applications (``index``); bulk child lines may come in any order."""
    index = application.get("index")
    return index is None, int(index or 0)


def per_item(application: dict[str, Any]) -> bool:
    """A fixed-amount code taken off every unit (``EACH``): its ``value`` is per unit, not what it took off."""
    value = application.get("value") or {}
    return (bool(application.get("code")) and application.get("allocationMethod") == "EACH"
            and application.get("targetType") != "SHIPPING_LINE" and value.get("percentage") is None)


def allocations_unknown(node: dict[str, Any]) -> bool:
    """An order with a per-item code whose allocations have not been asked for yet (``DISCOUNT_ALLOCATIONS``)."""
    return "allocatedByIndex" not in node and any(per_item(a) for a in nodes(node.get("discountApplications")))


def _discounts(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Discount codes as Karla's order discounts: a percentage as its rate, a fixed amount as what it took off.

    A shipping code (``targetType`` SHIPPING_LINE, "free shipping") is left out: Shopify already took it
    off ``currentShippingPriceSet``, which is sent as the shipping price; sent as well it would read as a
    100 % order discount. A per-item code sends the sum of its line items' allocations (``allocatedByIndex``)."""
    found = []
    allocated = node.get("allocatedByIndex") or {}
    for application in sorted(nodes(node.get("discountApplications")), key=_index):
        value = application.get("value") or {}
        if not application.get("code") or application.get("targetType") == "SHIPPING_LINE":
            continue  # automatic and manual discounts have no code Karla could show; shipping codes: see above
        if value.get("percentage") is not None:
            found.append({"code": application["code"], "amount": str(value["percentage"]), "type": "percentage"})
            continue
        amount = allocated.get(application.get("index")) if per_item(application) else None
        amount = amount if amount is not None else value.get("amount") or "0"
        found.append({"code": application["code"], "amount": str(amount), "type": "fixed_amount"})
    return found


def _order(node: dict[str, Any], number: str, options: MappingOptions) -> OrderPlacement:
    tags = [f"{options.segment_prefix}{t}" for t in node.get("tags") or []] if options.tags_as_segments else []
    customer, items = node.get("customer") or {}, nodes(node.get("lineItems"))
    return OrderPlacement.model_validate(_clean({
        "order_number": number, "order_name": node.get("name"),
        "external_id": str(node.get("legacyResourceId") or gid_number(node.get("id"))),
        "order_placed_at": node.get("processedAt") or node.get("createdAt"), "email_id": node.get("email"),
        "currency": node.get("currencyCode"), "total_order_price": _amount(node.get("currentTotalPriceSet")),
        "shipping_price": _amount(node.get("currentShippingPriceSet")),
        "sub_total_price": subtotal(items),
        "discount_price": _amount(node.get("currentTotalDiscountsSet")), "discounts": _discounts(node),
        "products": order_products(items), "address": _address(node),
        "segments": tags, "external_customer_id": str(gid_number(customer["id"])) if customer.get("id") else None,
        "order_status_url": node.get("statusPageUrl"),
    }))


def _trackings(node: dict[str, Any], options: MappingOptions) -> list[Tracking]:
    found, items = [], nodes(node.get("lineItems"))
    for fulfillment in live_fulfillments(node):
        products = parcel_products(items, nodes(fulfillment.get("fulfillmentLineItems")))
        shipment = str(fulfillment.get("legacyResourceId") or gid_number(fulfillment.get("id")))
        for info in fulfillment.get("trackingInfo") or []:
            if not (info.get("number") or "").strip():
                continue
            found.append(Tracking.model_validate(_clean({
                "tracking_number": info["number"], "tracking_url": info.get("url"), "products": products,
                "tracking_placed_at": fulfillment.get("createdAt"), "external_shipment_id": shipment,
                **carrier_fields(info.get("company"), options.carriers),
            })))
    return found


def map_order(node: dict[str, Any], options: MappingOptions, *, cursor: str | None = None) -> Record | Rejected:
    number = order_number(node)
    location = f"{node.get('id')} ({node.get('name')})"
    try:
        order = _order(node, number, options)
        trackings = _trackings(node, options)
    except ValidationError as exc:
        # Not its updatedAt: the store refreshes a letter whose record is the same, and every edit of the
        # order in Shopify (a tag, a note) made one bad order another letter and another warning.
        return Rejected(location=location, reason=_reason(node, explain(exc)), key=number,
                        raw={k: node.get(k) for k in ("id", "name")})
    return Record(key=number, order=order, trackings=trackings, cursor=cursor, location=location)


def _reason(node: dict[str, Any], detail: str) -> str:
    if "zip_code" not in detail:
        return f"order {node.get('name')}: {detail}"
    if withheld(node) and delivery_methods(node):
        why = "Shopify withheld the shipping address (the app lacks protected customer data access, Level 2)"
    elif withheld(node):
        why = ("Shopify sent no shipping address: it withheld it (protected customer data access, Level 2), or this "
               "is a local pickup the connector cannot recognise without a read_*_fulfillment_orders scope")
    else:  # countries without postal codes (HK, AE, QA...): Karla cannot take them
        country = (node.get("shippingAddress") or {}).get("countryCodeV2")
        why = f"the shipping address{f' ({country})' if country else ''} has no zip code"
    return f"order {node.get('name')}: {why}; Karla needs a zip code to create the order"
