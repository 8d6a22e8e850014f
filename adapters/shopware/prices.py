"""Money as Karla gets it from a Shopware order: what the customer pays (gross), and promotions as discounts.

Gross or net: Shopware stores line items and shipping costs as *net* prices in a net-priced order
(``taxStatus = "net"``, B2B customer groups), while ``amountTotal`` is always what the customer pays (net
plus taxes, ``AmountCalculator::calculateNetAmount``). Karla's docs name no basis, so everything is sent
gross, like the total: a net price is converted by adding its own ``calculatedTaxes`` (the tax Shopware
computed for exactly that price), so sub-total, shipping, discounts and total add up as on the invoice.
A tax-free order (``taxStatus = "tax-free"``) pays the net price: it is sent as stored.

Promotions: Shopware keeps a delivery-scope promotion (a shipping voucher) as a 0.00 placeholder line
carrying the discount's payload (``PromotionItemBuilder::buildDeliveryPlaceholderLineItem``) and takes the
money off as an extra delivery with negative shipping costs (``PromotionDeliveryCalculator``); the order's
``shippingTotal`` already is the discounted price, so such a promotion is not an order discount.
"""

from __future__ import annotations

from typing import Any

__all__ = ["discount", "gross_total", "gross_unit", "is_delivery_promotion", "is_net", "is_shipping_discount",
           "shipping_gross"]

Entity = dict[str, Any]


def is_net(order: Entity) -> bool:
    """The order's ``taxStatus``, else its cart price's (which carries it in every version)."""
    status = order.get("taxStatus") or (order.get("price") or {}).get("taxStatus")
    return status == "net"


def _taxes(price: Entity | None) -> float:
    """The tax Shopware calculated for one calculated price (all rates)."""
    return sum(float(t.get("tax") or 0) for t in (price or {}).get("calculatedTaxes") or [] if isinstance(t, dict))


def gross_total(item: Entity, net: bool) -> float:
    """A line's ``totalPrice`` as the customer pays it (negative for a promotion)."""
    total = float(item.get("totalPrice") or 0)
    return round(total + _taxes(item.get("price")), 2) if net else total


def gross_unit(item: Entity, net: bool) -> Any:
    """A line's ``unitPrice`` as the customer pays it: the gross total spread over the quantity (the
    line's taxes are calculated on its total, not per unit)."""
    unit, quantity = item.get("unitPrice"), item.get("quantity")
    if not net or unit is None:
        return unit
    if not quantity:
        return round(float(unit), 2)
    return round(gross_total(item, net) / float(quantity), 2)


def shipping_gross(order: Entity, net: bool) -> Any:
    """``shippingTotal`` (after shipping vouchers) as the customer pays it, from ``shippingCosts``' taxes."""
    total = order.get("shippingTotal")
    if not net or total is None:
        return total
    return round(float(total) + _taxes(order.get("shippingCosts")), 2)


def is_delivery_promotion(line: Entity) -> bool:
    """A shipping voucher's placeholder line: its money is in the shipping price, not in the line."""
    return (line.get("payload") or {}).get("discountScope") == "delivery"


def is_shipping_discount(delivery: Entity) -> bool:
    """The extra delivery Shopware writes for a shipping voucher: negative shipping costs, the real
    delivery's positions and method, never a parcel of its own (shopware/shopware PR #4924)."""
    try:
        return float((delivery.get("shippingCosts") or {}).get("totalPrice") or 0) < 0
    except (TypeError, ValueError):
        return False


def discount(line: Entity, net: bool) -> dict[str, Any]:
    """A line taking money off as Karla's discount: a percentage promotion as its rate, anything else (a
    credit, a ``discount`` line, a plugin's) as the money it took off: only a promotion's payload is known.

    Karla's ``amount`` is positive and means what ``type`` says (``"10.0"`` with ``percentage`` is 10 %).
    The line's ``totalPrice`` is the money, negative; the payload's ``value`` is the rate of a percentage
    promotion. A percentage with a cap (``maxValue``) may have taken off less than its rate says, so it is
    sent as the money, like the other kinds (absolute, fixed price, fixed unit price).
    """
    payload = line.get("payload") or {}
    code = payload.get("code") or line.get("label") or line.get("type") or "promotion"
    capped = payload.get("maxValue") not in (None, "")
    rate = line.get("type") == "promotion" and payload.get("discountType") == "percentage"
    if rate and payload.get("value") not in (None, "") and not capped:
        return {"code": code, "amount": str(float(payload["value"])), "type": "percentage"}
    return {"code": code, "amount": str(round(abs(gross_total(line, net)), 2)), "type": "fixed_amount"}
