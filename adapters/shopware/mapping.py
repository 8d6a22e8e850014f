"""Shopware orders -> Karla records, with the filters and field choices of Karla's own Shopware plugin.

Filters: an order is sent when its state is one of ``order_states``; its deliveries yield trackings when
their state is one of ``delivery_states``, they have tracking codes and they changed on or after
``historical_cutoff``. Karla's plugin skips the order-state filter for ``order_delivery.written``; a poll
has no events, so a delivery counts as *written* when it was created or updated in the window being read
(``changed_since``). An order in another state is then sent, with all its eligible deliveries' trackings:
the stream lists every live parcel of an order (``complete_trackings``), so one left out would count as
withdrawn; the engine sends only the parcels that changed.

Deliberate differences from the plugin: the address is the delivery's shipping address (the plugin takes
the first order address, which may be the billing one), a parcel's products carry the *position*
quantities (the plugin repeats the line item's), ``province_code`` drops the country prefix (``DE-BY`` -> ``BY``,
as in Karla's examples and the other sources), and the shipping method gives ``tracking_url`` and the
carrier (its name, else its tracking URL's host: see ``carrier``); ``tracking_placed_at`` is when the delivery was first moved into one of ``delivery_states``, from
the state machine history (``first_shipped``; the plugin sends the time of each event), else the delivery's
``createdAt`` (a delivery imported already shipped has no transition), else the order's time.
Replays of old trackings (the plugin's KAR-2196) cannot happen here: a tracking's payload holds no edit time
(the earliest transition into a shipped state stays the earliest when codes are added or the state moves on,
unlike ``updatedAt``), so its bytes stay as they were; the engine sends a tracking only when its payload
changed, and ``historical_cutoff`` bounds a first backfill.

Prices are what the customer pays (gross, also for net-priced orders); shipping vouchers stay in the shipping
price: see ``prices``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from adapters.base import Record, Rejected
from adapters.shopware.carrier import carrier
from adapters.shopware.config import ShopwareConfig, channel_key
from adapters.shopware.lines import Goods, is_product, top_level, unsent_lines
from adapters.shopware.lines import clean as _clean
from adapters.shopware.prices import discount, gross_total, is_delivery_promotion, is_net, is_shipping_discount, shipping_gross
from connector.karla.models import OrderPlacement, Tracking, explain

__all__ = ["first_shipped", "left_out", "map_order", "parse_time", "tracked_delivery_ids", "unsent_lines"]

Entity = dict[str, Any]


def parse_time(value: Any) -> datetime | None:
    """Shopware serialises datetimes as RFC 3339 with milliseconds; anything else counts as missing."""
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _get(entity: Entity | None, field: str) -> Any:
    """The translated value (falls back to the default language) before the raw, possibly empty, one."""
    entity = entity or {}
    return (entity.get("translated") or {}).get(field) or entity.get(field)


def _state(entity: Entity | None) -> str | None:
    return ((entity or {}).get("stateMachineState") or {}).get("technicalName")


def _address(raw: Entity) -> dict[str, Any]:
    street, extra = raw.get("street"), raw.get("additionalAddressLine1")
    name = " ".join(p for p in (raw.get("firstName"), raw.get("lastName")) if p)
    state, country = raw.get("countryState") or {}, raw.get("country") or {}
    return _clean({
        "zip_code": raw.get("zipcode"), "name": name, "company": raw.get("company"), "address_line_1": street,
        "address_line_2": extra, "street": ", ".join(p for p in (street, extra) if p), "city": raw.get("city"),
        "province": _get(state, "name"), "province_code": _subdivision(state.get("shortCode"), country.get("iso")),
        "country": _get(country, "name"), "country_code": country.get("iso"), "phone": raw.get("phoneNumber"),
    })


def _subdivision(code: str | None, country: str | None) -> str | None:
    """``DE-BY`` -> ``BY``: Karla's examples (and Shopify and the CSV source) send the code without the country."""
    if code and country and code.upper().startswith(f"{country.upper()}-"):
        return code[len(country) + 1 :]
    return code


def _parcels_first(deliveries: Iterable[Entity]) -> list[Entity]:
    """Real deliveries before a shipping voucher's negative-cost one (same order otherwise)."""
    return sorted(deliveries, key=is_shipping_discount)


def _shipping_address(order: Entity) -> dict[str, Any]:
    """The first delivery's shipping address; an order without deliveries falls back to its billing address."""
    for delivery in _parcels_first(order.get("deliveries") or []):
        if delivery.get("shippingOrderAddress"):
            return _address(delivery["shippingOrderAddress"])
    addresses = order.get("addresses") or []
    billing = [a for a in addresses if a.get("id") == order.get("billingAddressId")]
    return _address((billing or addresses or [{}])[0])


def _money_off(item: Entity, config: ShopwareConfig) -> bool:
    """A line that takes money off the order: a promotion (not a shipping voucher, whose money is in the
    shipping price), a credit ("Add credit"), or any other non-product line with a negative price, such as
    core's ``discount`` type or a customer-group or bulk-discount plugin's own. All are in ``amountTotal``."""
    kind = item.get("type")
    if kind == "promotion":
        return not is_delivery_promotion(item)
    return kind == "credit" or (not is_product(item, config) and float(item.get("totalPrice") or 0) < 0)


def _eligible(delivery: Entity, config: ShopwareConfig) -> bool:
    if _state(delivery) not in config.delivery_states or not _codes(delivery):
        return False
    changed = parse_time(delivery.get("updatedAt") or delivery.get("createdAt"))
    return not (config.historical_cutoff and changed and changed.date() < config.historical_cutoff)


def tracked_delivery_ids(orders: Iterable[Entity], config: ShopwareConfig) -> list[str]:
    """Ids of the deliveries that may yield trackings: the ones whose shipping time is looked up."""
    found = (d.get("id") for o in orders for d in o.get("deliveries") or [] if _eligible(d, config))
    return list(dict.fromkeys(str(i).lower() for i in found if i))


def _history_delivery(entry: Entity) -> str | None:
    """The delivery a history entry belongs to: ``referencedId`` (6.5+) or the JSON ``entityId`` (6.4)."""
    named = entry.get("referencedId") or (entry.get("entityId") or {}).get("id")
    return str(named).lower() if named else None


def first_shipped(entries: Iterable[Entity], states: list[str]) -> dict[str, str]:
    """Delivery id -> ``createdAt`` of its earliest history entry, when that entry moved it into a shipped state.

    ``entries``: its transitions into or out of ``states``. The earliest, not the latest: it is when the
    parcel left, and it never changes afterwards (a return and a second shipment, a code added later), so
    the tracking's bytes stay stable across reads. A delivery whose earliest entry moves it *out of* a
    shipped state was created shipped (an import): it gets no time here, so it keeps its creation time
    instead of jumping to a later transition.
    """
    earliest: dict[str, tuple[datetime, Entity]] = {}
    for entry in entries:
        delivery, moment = _history_delivery(entry), parse_time(entry.get("createdAt"))
        if delivery is not None and moment is not None and (delivery not in earliest or moment < earliest[delivery][0]):
            earliest[delivery] = (moment, entry)
    return {delivery: str(entry["createdAt"]) for delivery, (_, entry) in earliest.items()
            if _state({"stateMachineState": entry.get("fromStateMachineState")}) not in states}


def _codes(delivery: Entity) -> list[str]:
    codes = [str(c).strip() for c in delivery.get("trackingCodes") or []]
    return list(dict.fromkeys(c for c in codes if c))


def _placed(order: Entity, delivery: Entity, shipped: Mapping[str, str]) -> Any:
    """When the parcel was shipped: the first transition into a shipped state, else a stable lower bound.

    Shopware keeps no time for when a code was added. ``updatedAt`` moves with every later edit (another
    code, a state change), which would re-send older trackings with a rewritten time. ``createdAt`` is
    stable but usually checkout, days early (Karla computes ETAs from this, and an early date can start a
    delay campaign), so it is only the fallback, for a delivery created already shipped (an import).
    Omitting the field would let Karla stamp the receipt time: months late on a backfill.
    """
    return (shipped.get(str(delivery.get("id") or "").lower()) or delivery.get("createdAt")
            or order.get("orderDateTime") or order.get("createdAt"))


def _trackings(order: Entity, deliveries: list[Entity], config: ShopwareConfig, shipped: Mapping[str, str]) -> list[dict[str, Any]]:
    """One tracking per code. A shipping voucher's delivery (``prices.is_shipping_discount``) is no parcel: it
    repeats the real delivery's positions, so a code written on both would merge into one parcel with every
    quantity doubled. Its codes count only when no real delivery has them (one written on the wrong row)."""
    goods = Goods(order, config)  # a position on a Custom Products or set line is its product (``lines``)
    found, seen = [], set()
    for delivery in _parcels_first(deliveries):
        method = delivery.get("shippingMethod") or {}
        template = _get(method, "trackingUrl") or ""
        products = []
        for position in delivery.get("positions") or []:
            item = position.get("orderLineItem") or goods.by_id.get(position.get("orderLineItemId")) or {}
            if (found_product := goods.in_parcel(item, position.get("quantity"))) is not None:
                products.append(found_product)
        placed = _placed(order, delivery, shipped)
        for code in _codes(delivery):
            if is_shipping_discount(delivery) and code in seen:
                continue
            seen.add(code)
            found.append(_clean({
                "tracking_number": code, "tracking_placed_at": placed, "products": products,
                "tracking_url": template.replace("%s", quote(code, safe="")) if "%s" in template else None,
                **carrier(_get(method, "name"), template, config.carriers),
            }))
    return found


def _placement(order: Entity, config: ShopwareConfig) -> dict[str, Any]:
    """Prices as the customer pays them (gross, see ``prices``); a shipping voucher is in the shipping price."""
    net, goods = is_net(order), Goods(order, config)
    products = [i for i in top_level(order) if goods.sent(i)]
    promotions = [i for i in top_level(order) if _money_off(i, config)]
    customer = order.get("orderCustomer") or {}
    registered = (customer.get("customer") or {}).get("guest") is False
    channel = _get(order.get("salesChannel"), "name")
    segments = [f"Shopware.tag.{t['name']}" for t in order.get("tags") or [] if t.get("name")]
    return _clean({
        "order_number": order.get("orderNumber"), "external_id": order.get("id"),
        "order_placed_at": order.get("orderDateTime") or order.get("createdAt"),
        "total_order_price": order.get("amountTotal"), "shipping_price": shipping_gross(order, net),
        "sub_total_price": round(sum(gross_total(i, net) for i in products), 2),
        "discount_price": round(sum(abs(gross_total(i, net)) for i in promotions), 2),
        "discounts": [discount(i, net) for i in promotions],
        "currency": (order.get("currency") or {}).get("isoCode"), "email_id": customer.get("email"),
        "external_customer_id": customer.get("customerNumber") if registered else None,
        "address": _shipping_address(order), "products": [goods.product(i, i.get("quantity")) for i in products],
        "segments": segments + ([f"Shopware.sales_channel.{channel}"] if channel else []),
    })


def _written(delivery: Entity, since: datetime) -> bool:
    """Whether the delivery was created or updated in the window read (the plugin's ``order_delivery.written``)."""
    return (parse_time(delivery.get("updatedAt") or delivery.get("createdAt")) or since) >= since


def left_out(order: Entity, config: ShopwareConfig) -> bool:
    """Whether the filters keep this order from Karla as it stands, not only in the window read: its state is
    not one of ``order_states`` and no delivery would yield a parcel (one shipped later is a change, read
    again). Only then may its dead letters go (``Page.skipped``): an order whose shipped delivery changed in
    an earlier window is left out of later ones, though its letter holds what was never sent."""
    return _state(order) not in config.order_states and not any(_eligible(d, config) for d in order.get("deliveries") or [])


def map_order(order: Entity, config: ShopwareConfig, changed_since: datetime, cursor: str | None = None,
              shipped: Mapping[str, str] | None = None) -> Record | Rejected | None:
    """A record, a rejection naming the field, or None when the filters keep this order from Karla.

    ``shipped``: delivery id (lower-case hex) -> when it was first marked shipped (``first_shipped``).
    """
    number = str(order.get("orderNumber") or "")
    deliveries = [d for d in order.get("deliveries") or [] if _eligible(d, config)]
    if _state(order) not in config.order_states and not any(_written(d, changed_since) for d in deliveries):
        return None
    location = f"shopware order {number or '?'} ({order.get('id')})"
    try:
        placed = OrderPlacement.model_validate(_placement(order, config))
        trackings = [Tracking.model_validate(t) for t in _trackings(order, deliveries, config, shipped or {})]
    except ValidationError as exc:
        return Rejected(location=location, reason=f"order {number}: {explain(exc)}", key=number or None)
    return Record(key=number, order=placed, trackings=trackings, location=location, cursor=cursor,
                  shop_slug=config.sales_channels.get(channel_key(order.get("salesChannelId"))))
