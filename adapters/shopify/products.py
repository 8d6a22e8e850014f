"""Shopify line items -> Karla products: the order's, and each parcel's.

- Products are what the order holds now: ``currentQuantity`` leaves out units removed by an order edit or
  refunded (``quantity`` keeps them). A line with nothing left is not sent with the order.
- A parcel's product is the order's product for its line item (title, sku, unit price, image, product and
  variant ids) with the quantity shipped in it. Karla keeps a shipment's products apart from the order's
  (003, Update Shipment: a list "will override the current products in the shipment") and renders their
  images on the tracking page, so a parcel listing only sku and title showed its items bare. A fulfillment
  line item asks only for its line item's ``id`` (a free scalar, ``queries.FULFILLMENT_LINE_ITEM``); the rest
  comes from the order's line items, which every read fetches whole (``MORE_LINE_ITEMS``, bulk child lines).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.shopify.cursor import gid_number

__all__ = ["amount", "clean", "current_quantity", "decimal_amount", "order_products", "parcel_products", "subtotal"]


def clean(data: dict[str, Any]) -> dict[str, Any]:
    """Leave out empty fields rather than send nulls, empty strings and empty lists."""
    return {k: v for k, v in data.items() if v not in (None, "", [])}


def decimal_amount(value: Any) -> Decimal | None:
    """A ``MoneyBag``'s shop-currency amount, exactly; None when missing or unreadable."""
    raw = ((value or {}).get("shopMoney") or {}).get("amount")
    try:
        return Decimal(str(raw)) if raw not in (None, "") else None
    except InvalidOperation:
        return None


def amount(value: Any) -> float | None:
    found = decimal_amount(value)
    return float(found) if found is not None else None


def current_quantity(item: dict[str, Any]) -> Any:
    """Units still on the order: ``currentQuantity`` leaves out removed and refunded units, ``quantity``
    (the fallback, for data without ``currentQuantity``) counts everything ever ordered."""
    current = item.get("currentQuantity")
    return item.get("quantity") if current is None else current


def subtotal(items: list[dict[str, Any]]) -> float | None:
    """Items before shipping and discounts (Karla's definition), summed exactly: ``currentSubtotalPriceSet`` is
    after discounts. Current quantities, like the products sent; None when no line item has a price."""
    prices = [(decimal_amount(item.get("originalUnitPriceSet")), current_quantity(item)) for item in items]
    priced = [(price, int(qty or 0)) for price, qty in prices if price is not None]
    return float(sum((price * qty for price, qty in priced), Decimal(0))) if priced else None


def order_products(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order's line items, without those an edit or a refund removed entirely (nothing left to ship).

    By id: the paged read returns them so (a connection without ``sortKey`` is in id order), the bulk
    result promises no order among child lines; the same order from both paths must hash the same."""
    ordered = sorted(items, key=lambda item: gid_number(item.get("id")))
    return [_product(item, current_quantity(item)) for item in ordered if current_quantity(item) != 0]


def parcel_products(items: list[dict[str, Any]], shipped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A fulfillment's line items (``shipped``) as the order's products (``items``) with the quantity shipped.

    A line item the order does not list (data fetched without its ``id``) keeps what the fulfillment names."""
    by_id = {item["id"]: item for item in items if item.get("id")}
    found = []
    for row in shipped:
        line = row.get("lineItem") or {}
        item = by_id.get(line.get("id"))
        found.append(_product(item, row.get("quantity")) if item is not None else
                     clean({"sku": line.get("sku"), "title": line.get("title"), "quantity": row.get("quantity")}))
    return found


def _product(item: dict[str, Any], quantity: Any) -> dict[str, Any]:
    image = item.get("image") or {}
    images = [clean({"src": image.get("url"), "alt": image.get("altText")})] if image.get("url") else []
    return clean({
        "title": item.get("title"), "sku": item.get("sku"), "quantity": quantity,
        "price": amount(item.get("originalUnitPriceSet")), "images": images,
        # numeric ids, as Karla's product catalog keys Shopify products (003: ``external_product_id``, the
        # recommendations' ``"id": 7234567890``) and as ``external_id`` is sent; a gid would never match them
        "product_id": _numeric_id(item.get("product")), "variant_id": _numeric_id(item.get("variant")),
    })


def _numeric_id(owner: dict[str, Any] | None) -> str | None:
    """``{"id": "gid://shopify/Product/7234567890"}`` -> ``"7234567890"``; None for a deleted or custom item."""
    number = gid_number((owner or {}).get("id"))
    return str(number) if number >= 0 else None
