"""The search Criteria the adapter sends: a closed time window, an ``autoIncrement`` keyset, the order-state
filter, and only the associations and fields the mapping reads.

Only features present since Shopware 6.4 are used: ``multi``/``range``/``equalsAny`` filters, nested
association criteria with ``sort``, ``includes`` and a numeric ``total-count-mode`` (no ``fields``, which
needs 6.5). Dates go out in the storage format ``Y-m-d H:i:s.v`` UTC, which MySQL and MariaDB both accept
(range values are bound as raw strings; an ISO offset breaks on MariaDB).

The state machine history names the entity a transition belongs to by ``referencedId`` from 6.5 (a column
generated from the JSON ``entityId`` in 6.5, the only one from 6.6) and by ``entityId.id`` in 6.4, which has
no ``referencedId``; ``HISTORY_ID_FIELDS`` lists them in the order the adapter tries them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["ASSOCIATIONS", "HISTORY_ID_FIELDS", "INCLUDES", "Window", "channel_criteria", "history_criteria", "number_criteria", "probe_criteria",
           "state_criteria", "storage_time", "unloaded", "window_criteria"]

TOTAL_COUNT_NONE = 0  # "total" is then just the rows on the page: stop when a page is short

INCLUDES: dict[str, list[str]] = {
    "order": ["id", "autoIncrement", "orderNumber", "orderDateTime", "createdAt", "updatedAt", "amountTotal",
              "shippingTotal", "shippingCosts", "taxStatus", "price", "salesChannelId", "billingAddressId", "lineItems",
              "deliveries", "addresses", "orderCustomer", "currency", "stateMachineState", "salesChannel", "tags"],
    "order_line_item": ["id", "type", "parentId", "label", "quantity", "unitPrice", "totalPrice", "price", "payload",
                        "referencedId", "productId", "cover"],
    # Prices are structs, filtered by their apiAlias too: a net order's prices become gross with their taxes.
    "cart_price": ["taxStatus"],
    "calculated_price": ["totalPrice", "calculatedTaxes"],
    "cart_tax_calculated": ["tax"],
    "media": ["url", "alt"],
    "order_delivery": ["id", "trackingCodes", "createdAt", "updatedAt", "shippingCosts", "shippingMethod",
                       "stateMachineState", "positions", "shippingOrderAddress"],
    "order_delivery_position": ["orderLineItemId", "quantity"],
    "shipping_method": ["name", "trackingUrl", "translated"],
    "state_machine_state": ["technicalName"],
    "order_address": ["id", "firstName", "lastName", "company", "street", "additionalAddressLine1", "zipcode",
                      "city", "phoneNumber", "country", "countryState"],
    "country": ["iso", "name", "translated"],
    "country_state": ["shortCode", "name", "translated"],
    "order_customer": ["email", "customerNumber", "customer"],
    "customer": ["guest"],
    "currency": ["isoCode"],
    "sales_channel": ["name", "translated"],
    "tag": ["name"],
}

_COUNTRY = {"associations": {"country": {}, "countryState": {}}}

# Deliveries in a stable order, so "the first delivery's shipping address" means the same one every time.
ASSOCIATIONS: dict[str, Any] = {
    "lineItems": {"associations": {"cover": {}}},
    "deliveries": {
        "sort": [{"field": "createdAt", "order": "ASC"}, {"field": "id", "order": "ASC"}],
        "associations": {"shippingMethod": {}, "stateMachineState": {}, "positions": {}, "shippingOrderAddress": _COUNTRY},
    },
    "addresses": _COUNTRY,
    "orderCustomer": {"associations": {"customer": {}}},
    "currency": {},
    "stateMachineState": {},
    "salesChannel": {},
    "tags": {},
}


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end]``, both fixed before the first page, in whole milliseconds (Shopware's precision)."""

    start: datetime
    end: datetime


def storage_time(moment: datetime) -> str:
    """Shopware's storage format in UTC (``Y-m-d H:i:s.v``)."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _span(field: str, window: Window) -> dict[str, Any]:
    return {"type": "range", "field": field, "parameters": {"gte": storage_time(window.start), "lte": storage_time(window.end)}}


def window_criteria(window: Window, after: int, limit: int, order_states: list[str],
                    exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Orders touched in ``window`` with ``autoIncrement > after``, oldest first.

    Touched: created, updated, or one of its deliveries created or updated (``updatedAt`` is NULL until a
    row's first update, and tracking codes written to a delivery do not bump the order). The order-state
    filter admits other states too when a delivery changed in the window, as Karla's plugin skips it for
    ``order_delivery.written``; the mapping then sends only those deliveries. ``exclude``: ids of orders
    Shopware cannot load, left out so the keyset can move past them.
    """
    delivery_changed = [_span("deliveries.createdAt", window), _span("deliveries.updatedAt", window)]
    states = [{"type": "equalsAny", "field": "stateMachineState.technicalName", "value": order_states}] if order_states else []
    return {
        "limit": limit,
        "total-count-mode": TOTAL_COUNT_NONE,
        "filter": [
            {"type": "multi", "operator": "OR",
             "queries": [_span("createdAt", window), _span("updatedAt", window), *delivery_changed]},
            {"type": "multi", "operator": "OR", "queries": [*states, *delivery_changed]},
            {"type": "range", "field": "autoIncrement", "parameters": {"gt": after}},
            *([{"type": "not", "operator": "and", "queries": [{"type": "equalsAny", "field": "id", "value": list(exclude)}]}]
              if exclude else []),
        ],
        "sort": [{"field": "autoIncrement", "order": "ASC"}],
        "associations": ASSOCIATIONS,
        "includes": INCLUDES,
    }


def unloaded(criteria: dict[str, Any]) -> dict[str, Any]:
    """``criteria`` for ``search-ids``: the same rows, nothing loaded."""
    return {k: v for k, v in criteria.items() if k not in ("associations", "includes")}


def number_criteria(order_id: str) -> dict[str, Any]:
    """One order's number without associations: what can still be read of an order that fails to load."""
    return {"ids": [order_id], "total-count-mode": TOTAL_COUNT_NONE, "includes": {"order": ["id", "orderNumber"]}}


def channel_criteria(ids: list[str]) -> dict[str, Any]:
    """These sales channels' names (``check``; the order search already needs ``sales_channel:read``)."""
    return {"limit": len(ids), "total-count-mode": TOTAL_COUNT_NONE, "filter": [{"type": "equalsAny", "field": "id", "value": ids}],
            "includes": {"sales_channel": ["id", "name", "translated"]}}


def probe_criteria() -> dict[str, Any]:
    """One order with every association the sync loads: a missing read privilege shows up at ``check``."""
    return {"limit": 1, "total-count-mode": TOTAL_COUNT_NONE, "sort": [{"field": "autoIncrement", "order": "DESC"}],
            "associations": ASSOCIATIONS, "includes": INCLUDES}


def state_criteria(machines: Sequence[str], limit: int, page: int) -> dict[str, Any]:
    """The states of these state machines with their machine and label (``states``: the configured names
    checked against the shop's). The filter and association need ``state_machine:read``. Offset paging: the
    table holds a few dozen rows and changes only when a plugin is installed."""
    return {"limit": limit, "page": page, "total-count-mode": TOTAL_COUNT_NONE,
            "sort": [{"field": "technicalName", "order": "ASC"}, {"field": "id", "order": "ASC"}],
            "filter": [{"type": "equalsAny", "field": "stateMachine.technicalName", "value": list(machines)}],
            "associations": {"stateMachine": {}},
            "includes": {"state_machine_state": ["technicalName", "name", "translated", "stateMachine"],
                         "state_machine": ["technicalName"]}}


# Newest first: 6.5+ (``StateMachineHistoryDefinition``: IdField ``referencedId``), then 6.4 (JsonField ``entityId``,
# written as ``{"id": ..., "version_id": ...}`` by ``StateMachineRegistry::transition``).
HISTORY_ID_FIELDS = ("referencedId", "entityId.id")


def history_criteria(delivery_ids: list[str], states: list[str], id_field: str, limit: int, page: int) -> dict[str, Any]:
    """Transitions of these deliveries into or out of one of ``states``, oldest first, with the fields
    ``mapping.first_shipped`` reads (the from-state tells a delivery that was shipped before its first entry).

    Offset paging is safe here although it is not for orders: history rows are only ever appended, with a
    later ``createdAt``, so they join the end of the sorted set; a row committed late can only repeat one,
    never hide one, and the earliest per delivery is what is kept. The to-state is filtered through the
    association (joined, not loaded).
    """
    shipped = [{"type": "equalsAny", "field": f"{side}.technicalName", "value": states}
               for side in ("toStateMachineState", "fromStateMachineState")]
    return {
        "limit": limit,
        "page": page,
        "total-count-mode": TOTAL_COUNT_NONE,
        "filter": [
            {"type": "equals", "field": "entityName", "value": "order_delivery"},
            {"type": "equalsAny", "field": id_field, "value": delivery_ids},
            {"type": "multi", "operator": "OR", "queries": shipped},
        ],
        "sort": [{"field": "createdAt", "order": "ASC"}, {"field": "id", "order": "ASC"}],
        "associations": {"fromStateMachineState": {}},
        "includes": {"state_machine_history": ["id", id_field.split(".")[0], "createdAt", "fromStateMachineState"],
                     "state_machine_state": ["technicalName"]},
    }
