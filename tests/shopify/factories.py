"""Realistic orders and fulfillments for the fake shop, with every field the adapter asks for.

Orders carry only Shopify's "current" amounts (``current*Set``): a query still asking for the amounts
before edits and refunds (``totalPriceSet``...) then fails on the fake, as a null in a non-null field.
Line items carry ``quantity`` (as ordered) and ``currentQuantity`` (what is left after order edits and
refunds, equal by default) and the ids of their product and variant. ``deliveryMethod`` is the method type
of the order's fulfillment orders (``SHIPPING``; ``pickup`` and ``pos`` make orders without an address).
"""

from __future__ import annotations

from typing import Any

__all__ = ["fulfillment", "money", "order", "order_gid", "pickup", "pos"]


def money(amount: str, currency: str = "EUR") -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": currency}, "presentmentMoney": {"amount": amount, "currencyCode": currency}}


def order_gid(n: int) -> str:
    return f"gid://shopify/Order/{5_000_000 + n}"


def order(n: int, *, updated: str | None = None, items: int = 2, **overrides: Any) -> dict[str, Any]:
    """Order #``1000 + n`` with ``items`` line items, unshipped, shipping to Berlin."""
    gid = order_gid(n)
    line_items = [
        {
            "id": f"gid://shopify/LineItem/{(5_000_000 + n) * 100 + i}", "sku": f"SKU-{n}-{i}", "title": f"Artikel {i} „Größe M“",
            "quantity": i + 1, "currentQuantity": i + 1, "originalUnitPriceSet": money(f"{10 + i}.50"),
            "image": {"url": f"https://cdn.shopify.com/s/files/{n}-{i}.jpg", "altText": None} if i % 2 == 0 else None,
            "product": {"id": f"gid://shopify/Product/{8_000_000 + i}"},
            "variant": {"id": f"gid://shopify/ProductVariant/{9_000_000 + i}"},
        }
        for i in range(items)
    ]
    data: dict[str, Any] = {
        "id": gid, "legacyResourceId": str(5_000_000 + n), "name": f"#{1000 + n}", "email": f"kunde{n}@example.com",
        "cancelledAt": None, "closedAt": None, "currencyCode": "EUR", "tags": ["vip"], "test": False, "sourceName": "web",
        "deliveryMethod": "SHIPPING",
        "statusPageUrl": f"https://karla-test.myshopify.com/123/orders/abc{n}/authenticate?key=k{n}", "requiresShipping": True,
        "currentTotalPriceSet": money("59.90"), "currentSubtotalPriceSet": money("55.00"),
        "currentShippingPriceSet": money("4.90"), "currentTotalDiscountsSet": money("0.00"),
        "customer": {"id": f"gid://shopify/Customer/{700 + n}"},
        "shippingAddress": {
            "name": "Zoë Łukasiewicz", "company": None, "address1": "Torstraße 1", "address2": "", "city": "Berlin",
            "province": "Berlin", "provinceCode": "BE", "zip": "10119", "country": "Germany", "countryCodeV2": "DE", "phone": None,
        },
        "discountApplications": [], "lineItems": line_items, "fulfillments": [],
    }
    if updated:
        data["updatedAt"] = updated
    data.update(overrides)
    return data


def pickup(n: int, **overrides: Any) -> dict[str, Any]:
    """Local pickup: Shopify keeps no shipping address, but the pickup shipping line makes requiresShipping true."""
    return order(n, **{"shippingAddress": None, "requiresShipping": True, "deliveryMethod": "PICK_UP", **overrides})


def pos(n: int, **overrides: Any) -> dict[str, Any]:
    """Sold in a shop through Shopify POS: no address, no shipping line, yet physical items require shipping."""
    return order(n, **{"shippingAddress": None, "requiresShipping": True, "deliveryMethod": "RETAIL",
                       "sourceName": "pos", **overrides})


def fulfillment(
    parent: dict[str, Any], fid: int, numbers: list[str], *, company: str | None = "DHL Express", status: str = "SUCCESS",
    items: list[tuple[int, int]] | None = None, created: str | None = None, requires_shipping: bool = True,
) -> dict[str, Any]:
    """A fulfillment of ``parent`` with one tracking number per parcel; ``items`` = (line index, quantity),
    by default every unit still on the order (removed and refunded units cannot be shipped)."""
    lines = parent["lineItems"]
    left = [(i, li.get("currentQuantity", li["quantity"])) for i, li in enumerate(lines)]
    chosen = items if items is not None else [(i, qty) for i, qty in left if qty]
    data = {
        "id": f"gid://shopify/Fulfillment/{fid}", "legacyResourceId": str(fid), "status": status, "requiresShipping": requires_shipping,
        "trackingInfo": [{"number": n, "company": company, "url": f"https://track.example/{n}"} for n in numbers],
        "fulfillmentLineItems": [
            {"id": f"gid://shopify/FulfillmentLineItem/{fid * 100 + i}", "lineItemId": lines[i]["id"], "quantity": qty}
            for i, qty in chosen
        ],
    }
    if created:
        data["createdAt"] = data["updatedAt"] = created
    return data
