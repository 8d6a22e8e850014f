"""Realistic Shopware entities for the fake, shaped like ``shared/reference/shopware-api.md`` §7.3.

Every entity carries the base fields the Admin API serialises (``versionId``, ``translated``,
``customFields``, ``extensions``, ``_uniqueIdentifier``, ``apiAlias``) so ``includes`` has real work to
do. Timestamps are set by ``FakeShopware.insert``.
"""

from __future__ import annotations

import uuid
from typing import Any

Entity = dict[str, Any]
LIVE = "0fa91ce3e96a4bc2be4bd9ce752c3425"
CHANNEL = "98432def39fc4624b33213a56b8c944d"
DHL_URL = "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode=%s"


def _entity(alias: str, versioned: bool = False, **fields: Any) -> Entity:
    ident = fields.pop("id", None) or uuid.uuid4().hex
    return {"versionId": LIVE if versioned else None, "translated": [], "createdAt": None, "updatedAt": None, **fields,
            "customFields": None, "_uniqueIdentifier": ident, "id": ident, "extensions": [], "apiAlias": alias}


def state(name: str) -> Entity:
    label = name.replace("_", " ").capitalize()
    return _entity("state_machine_state", id=uuid.uuid5(uuid.NAMESPACE_OID, name).hex, technicalName=name, name=label,
                   translated={"name": label, "customFields": {}}, createdAt="2024-01-02T10:00:00.000+00:00")


# Shopware core's state machines (``OrderStates``, ``OrderDeliveryStates``, ``OrderTransactionStates``).
MACHINES = {"order.state": ["open", "in_progress", "completed", "cancelled"],
            "order_delivery.state": ["open", "shipped", "shipped_partially", "returned", "returned_partially", "cancelled"],
            "order_transaction.state": ["open", "paid", "paid_partially", "refunded", "refunded_partially", "cancelled",
                                        "reminded", "authorized", "failed", "in_progress", "chargeback", "unconfirmed"]}


def machine_states() -> list[Entity]:
    """Every ``state_machine_state`` row of core's three machines, with its ``stateMachine``."""
    rows = []
    for machine, names in MACHINES.items():
        owner = _entity("state_machine", id=uuid.uuid5(uuid.NAMESPACE_OID, machine).hex, technicalName=machine)
        for name in names:
            row = state(name)
            rows.append({**row, "id": uuid.uuid5(uuid.NAMESPACE_OID, f"{machine}.{name}").hex, "stateMachine": owner,
                         "stateMachineId": owner["id"]})
    return rows


def address(first: str = "Jane", last: str = "Doe", street: str = "Torstraße 1", zipcode: str | None = "10119",
            city: str = "Berlin", *, extra: str | None = None, iso: str = "DE", country: str = "Germany",
            region: tuple[str, str] | None = ("DE-BE", "Berlin"), phone: str | None = None, company: str | None = None) -> Entity:
    state_entity = None
    if region:
        state_entity = _entity("country_state", shortCode=region[0], name=region[1], translated={"name": region[1]})
    return _entity("order_address", True, firstName=first, lastName=last, street=street, zipcode=zipcode, city=city,
                   company=company, department=None, title=None, vatId=None, phoneNumber=phone, additionalAddressLine1=extra,
                   additionalAddressLine2=None, country=_entity("country", iso=iso, iso3=None, name=country,
                                                                translated={"name": country}),
                   countryState=state_entity, salutation=None)


def shipping_method(name: str = "DHL Paket", url: str | None = DHL_URL) -> Entity:
    return _entity("shipping_method", name=name, trackingUrl=url, technicalName=name.lower().replace(" ", "_"), active=True,
                   translated={"name": name, "trackingUrl": url, "description": None, "customFields": {}})


def sales_channel(ident: str, name: str) -> Entity:
    return _entity("sales_channel", id=ident, name=name, translated={"name": name}, typeId=uuid.uuid4().hex, active=True)


def number_range(name: str, pattern: str = "{n}", channels: tuple[str, ...] = (), *, is_global: bool = False) -> Entity:
    """An order ``number_range``: the global one, or one assigned to ``channels`` (``number_range_sales_channel``)."""
    kind = _entity("number_range_type", technicalName="order", typeName="Order", isGlobal=False)
    links = [_entity("number_range_sales_channel", salesChannelId=c, numberRangeTypeId=kind["id"]) for c in channels]
    return _entity("number_range", name=name, translated={"name": name}, pattern=pattern, start=10000,
                   typeId=kind["id"], type=kind, numberRangeSalesChannels=links, **{"global": is_global})


def price(unit: float, quantity: int = 1, *, rate: float = 19.0, net: bool = False) -> Entity:
    """A ``calculated_price``: its tax is included in a gross price and added on top of a net one."""
    total = round(quantity * unit, 2)
    tax = round(total * rate / 100 if net else total - total / (1 + rate / 100), 2)
    return {"unitPrice": unit, "quantity": quantity, "totalPrice": total,
            "calculatedTaxes": [{"tax": tax, "taxRate": rate, "price": total, "extensions": [], "apiAlias": "cart_tax_calculated"}],
            "taxRules": [{"taxRate": rate, "percentage": 100, "extensions": [], "apiAlias": "cart_tax_rule"}],
            "referencePrice": None, "listPrice": None, "extensions": [], "apiAlias": "calculated_price"}


def _taxes(*prices: Entity) -> float:
    return round(sum(t["tax"] for p in prices for t in p["calculatedTaxes"]), 2)


def line_item(label: str, sku: str, quantity: int, unit: float, *, kind: str = "product", cover: str | None = "auto",
              parent_id: str | None = None, payload: Entity | None = None) -> Entity:
    product_id = uuid.uuid4().hex if kind == "product" else None
    media = None
    if cover:
        url = f"https://shop.example.com/media/{sku.lower()}.jpg" if cover == "auto" else cover
        media = _entity("media", url=url, alt=None, title=None, mimeType="image/jpeg", fileName=sku.lower())
    return _entity("order_line_item", True, identifier=product_id, referencedId=product_id or sku, productId=product_id,
                   quantity=quantity, unitPrice=unit, totalPrice=round(quantity * unit, 2), label=label, good=kind == "product",
                   type=kind, parentId=parent_id, cover=media, coverId=media and media["id"], states=["is-physical"],
                   payload=payload if payload is not None else {"productNumber": sku, "parentId": None, "options": []},
                   price=price(unit, quantity))


def promotion(code: str, amount: float, discount_type: str = "absolute", label: str | None = None, value: float | None = None,
              *, scope: str = "cart", max_value: float | None = None) -> Entity:
    """``amount``: the money the line takes off (negative); ``value``: the payload's value, the rate of a
    percentage promotion (Shopware stores it as text); ``max_value``: a percentage's cap. The payload is
    ``PromotionItemBuilder::buildPayload``'s. A ``scope="delivery"`` promotion (shipping voucher) is the 0.00
    placeholder line ``buildDeliveryPlaceholderLineItem`` stores; its money is a ``shipping_discount`` delivery."""
    rate = value if value is not None else abs(amount)
    payload = {"promotionId": uuid.uuid4().hex, "discountId": uuid.uuid4().hex, "discountType": discount_type, "code": code,
               "value": str(rate), "maxValue": "" if max_value is None else str(max_value), "discountScope": scope,
               "exclusions": [], "groupId": "", "setGroups": [], "promotionCodeType": "fixed"}
    return line_item(label or f"Promotion {code}", code, 1, 0.0 if scope == "delivery" else amount, kind="promotion",
                     cover=None, payload=payload)


def delivery(positions: list[tuple[Entity, int]], *, codes: list[str] | None = None, status: str = "open",
             method: Entity | None = None, ship_to: Entity | None = None, cost: float = 0.0) -> Entity:
    rows = [_entity("order_delivery_position", True, orderLineItemId=item["id"], orderLineItem=item, quantity=qty,
                    unitPrice=item["unitPrice"], totalPrice=round(qty * item["unitPrice"], 2)) for item, qty in positions]
    state_entity = state(status)
    return _entity("order_delivery", True, trackingCodes=list(codes or []), stateMachineState=state_entity, stateId=state_entity["id"],
                   shippingMethod=method or shipping_method(), shippingOrderAddress=ship_to, positions=rows, shippingCosts=price(cost),
                   shippingDateEarliest="2024-05-15T16:00:00.000+00:00", shippingDateLatest="2024-05-17T16:00:00.000+00:00")


def shipping_discount(real: Entity, amount: float) -> Entity:
    """The delivery ``PromotionDeliveryCalculator::addDiscountDeliveryItem`` adds for a shipping voucher: the
    real delivery's positions, method and address with negative shipping costs (shopware/shopware PR #4924)."""
    positions = [(p["orderLineItem"], p["quantity"]) for p in real["positions"]]
    return delivery(positions, method=real["shippingMethod"], ship_to=real["shippingOrderAddress"], cost=-abs(amount))


def _net(items: list[Entity], shipping: Entity) -> None:
    """Reprice a net order (``taxStatus = "net"``): prices stay, their taxes are added on top."""
    for item in items:
        item["price"] = price(item["unitPrice"], item["quantity"], net=True)
    shipping.update(price(shipping["unitPrice"], net=True))


def order(number: str, *, items: list[Entity] | None = None, deliveries: list[Entity] | None = None, status: str = "in_progress",
          email: str = "jane.doe@example.com", customer_number: str = "10042", guest: bool = False, channel: str = CHANNEL,
          billing: Entity | None = None, tags: tuple[str, ...] = (), shipping: float = 4.9, shipping_voucher: float = 0.0,
          tax_status: str = "gross", **fields: Any) -> Entity:
    """An order; by default one open delivery of all items to the billing address and no tracking code.

    ``shipping_voucher``: money a delivery-scope promotion took off the shipping (an extra delivery with
    negative costs; ``shippingTotal`` is what is left). ``tax_status="net"``: prices are net, taxes come on top.
    """
    items = items if items is not None else [line_item("Organic Cotton T-Shirt", f"SW{number}.1", 2, 24.95)]
    billing = billing or address()
    if deliveries is None:
        deliveries = [delivery([(i, i["quantity"]) for i in items if i["type"] == "product"], ship_to=billing, cost=shipping)]
    if shipping_voucher:
        deliveries = [*deliveries, shipping_discount(deliveries[0], shipping_voucher)]
    shipping = round(shipping - shipping_voucher, 2)
    costs = price(shipping)
    if tax_status == "net":
        _net(items, costs)
    goods, taxes = round(sum(i["totalPrice"] for i in items), 2), _taxes(costs, *(i["price"] for i in items))
    net, total = (goods + shipping, goods + shipping + taxes) if tax_status == "net" else (goods + shipping - taxes, goods + shipping)
    ship_to = [d["shippingOrderAddress"] for d in deliveries if d.get("shippingOrderAddress")]
    status_entity = state(status)
    customer = _entity("customer", guest=guest, customerNumber=customer_number)
    entity = _entity(
        "order", True, orderNumber=number, autoIncrement=None, orderDateTime="2024-05-14T09:21:47.512+00:00",
        amountTotal=round(total, 2), amountNet=round(net, 2), shippingTotal=shipping, shippingCosts=costs, taxStatus=tax_status,
        price={"netPrice": round(net, 2), "totalPrice": round(total, 2), "positionPrice": goods, "rawTotal": round(total, 2),
               "taxStatus": tax_status, "calculatedTaxes": [], "taxRules": [], "extensions": [], "apiAlias": "cart_price"},
        salesChannelId=channel, billingAddressId=billing["id"], stateId=status_entity["id"], stateMachineState=status_entity,
        currency=_entity("currency", isoCode="EUR", factor=1, symbol="€"), lineItems=items, deliveries=deliveries,
        addresses=[billing, *[a for a in ship_to if a["id"] != billing["id"]]],
        orderCustomer=_entity("order_customer", True, email=email, firstName="Jane", lastName="Doe", customerNumber=customer_number,
                              customerId=customer["id"], customer=customer),
        salesChannel=_entity("sales_channel", name="Storefront", translated={"name": "Storefront"}),
        tags=[_entity("tag", name=t) for t in tags], transactions=None, documents=None, deepLinkCode="Xk3vQ9bF1mZ7rT2p",
    )
    entity.update(fields)
    return entity
