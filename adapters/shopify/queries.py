"""Every GraphQL document the adapter sends, and the search strings it filters with.

The tests validate each document against Shopify's published 2025-01 schema (the fake server refuses
anything Shopify would), and check ``ORDER_NODE_COST`` against the fake's cost calculation, which follows
Shopify's published rules: objects 1, scalars 0, a connection 2 + ``first`` × one node.

Nested sizes are a trade: each order's requested cost decides how many orders fit under the 1000-point
ceiling of one request. Line items, discount applications and fulfillment line items beyond the nested
page are fetched afterwards (``MORE_*``), so an order is never sent truncated and a poll sends the same
order as the bulk full sync, which gets every nested node. ``fulfillments`` and ``trackingInfo`` are
lists without paging, so they are requested without ``first`` (all of them).

Quantities and money are the "current" ones: after an order edit or a refund, ``quantity`` and
``totalPriceSet`` still count the removed units, ``currentQuantity`` and ``current*Set`` do not.
``quantity`` is still asked for as a fallback for line items without ``currentQuantity``.
"""

from __future__ import annotations

import json

__all__ = [
    "BULK_CANCEL", "BULK_RUN", "BULK_RUN_GROUPED", "BULK_STATUS", "BULK_STATUS_COST", "CHECK", "DELIVERY_METHODS", "DELIVERY_NODE_COST", "CHECK_COST", "DISCOUNT_ALLOCATIONS", "DISCOUNT_ALLOCATIONS_COST", "MUTATION_COST", "SCOPES_COST", "FULFILLMENT_LINE_ITEMS", "MORE_DISCOUNTS",
    "MORE_DISCOUNTS_COST", "MORE_FULFILLMENT_LINE_ITEMS", "MORE_FULFILLMENT_LINE_ITEMS_COST", "MORE_LINE_ITEMS", "MORE_LINE_ITEMS_COST", "ORDERS", "ORDERS_COUNT", "ORDERS_COUNT_COST", "ORDERS_BY_ID", "ORDER_NODE_COST", "FULFILLMENT_NODE_COST", "PROBE_BY_ID",
    "PROBE_NODE_COST", "PROBE_SEARCH", "SCOPES", "bulk_orders_query", "bulk_run_document", "groups_bulk_objects",
    "unshipped_search", "window_search",
]

LINE_ITEMS_FIRST = 10
FULFILLMENT_LINE_ITEMS_FIRST = 10
DISCOUNTS_FIRST = 5

_PAGE_INFO = "pageInfo { hasNextPage endCursor }"
LINE_ITEM = (  # cost 6
    "id sku title quantity currentQuantity originalUnitPriceSet { shopMoney { amount } } image { url altText }"
    " product { id } variant { id }"
)
# The line item's ``id`` (a free scalar) finds the order's line item, whose image and price the parcel carries.
FULFILLMENT_LINE_ITEM = "quantity lineItem { id sku title }"  # cost 2
# ``index`` orders the applications whatever order they arrive in (bulk JSONL promises none) and ties a line
# item's allocation to its code; ``targetType`` tells a shipping code (already in the shipping price) from an
# order discount; ``allocationMethod`` EACH means the value was taken off every unit (see DISCOUNT_ALLOCATIONS).
DISCOUNT = (  # cost 2 (enums and scalars are free)
    "... on DiscountCodeApplication { code index targetType allocationMethod"
    " value { ... on MoneyV2 { amount } ... on PricingPercentageValue { percentage } } }"
)
FULFILLMENT_HEAD = "id legacyResourceId status createdAt requiresShipping trackingInfo { number company url }"  # cost 2

_ORDER_HEAD = """
    id legacyResourceId name email createdAt processedAt updatedAt cancelledAt closedAt currencyCode tags test
    statusPageUrl requiresShipping displayFulfillmentStatus sourceName
    currentTotalPriceSet { shopMoney { amount } }
    currentShippingPriceSet { shopMoney { amount } }
    currentTotalDiscountsSet { shopMoney { amount } }
    customer { id }
    shippingAddress { name company address1 address2 city province provinceCode zip country countryCodeV2 phone }"""  # cost 9

ORDER_FIELDS = f"""{_ORDER_HEAD}
    discountApplications(first: {DISCOUNTS_FIRST}) {{ {_PAGE_INFO} nodes {{ {DISCOUNT} }} }}
    lineItems(first: {LINE_ITEMS_FIRST}) {{ {_PAGE_INFO} nodes {{ {LINE_ITEM} }} }}
    fulfillments {{
      {FULFILLMENT_HEAD}
      fulfillmentLineItems(first: {FULFILLMENT_LINE_ITEMS_FIRST}) {{ {_PAGE_INFO} nodes {{ {FULFILLMENT_LINE_ITEM} }} }}
    }}"""

# 9 (head) + 2 + 5*2 (discounts) + 2 + 10*6 (line items) + 2 + 2 + 10*2 (one fulfillment, a list costs as one);
# a connection's pageInfo is part of its 2. 107 points: 9 orders per request (11 before product/variant ids).
# ``currentSubtotalPriceSet`` is not asked for: it is after discounts, Karla's subtotal is before (mapping.py).
ORDER_NODE_COST = 9 + (2 + DISCOUNTS_FIRST * 2) + (2 + LINE_ITEMS_FIRST * 6) + (2 + 2 + FULFILLMENT_LINE_ITEMS_FIRST * 2)
# one Fulfillment object + its line-item connection, as asked for by FULFILLMENT_LINE_ITEMS
FULFILLMENT_NODE_COST = 1 + 2 + FULFILLMENT_LINE_ITEMS_FIRST * 2

ORDERS = f"""query Orders($first: Int!, $after: String, $query: String!) {{
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {{
    {_PAGE_INFO}
    nodes {{{ORDER_FIELDS}
    }}
  }}
}}"""

MORE_LINE_ITEMS = f"""query MoreLineItems($id: ID!, $after: String) {{
  order(id: $id) {{ lineItems(first: 100, after: $after) {{ {_PAGE_INFO} nodes {{ {LINE_ITEM} }} }} }}
}}"""

MORE_LINE_ITEMS_COST = 1 + 2 + 100 * 6

MORE_DISCOUNTS = f"""query MoreDiscounts($id: ID!, $after: String) {{
  order(id: $id) {{ discountApplications(first: 100, after: $after) {{ {_PAGE_INFO} nodes {{ {DISCOUNT} }} }} }}
}}"""

MORE_DISCOUNTS_COST = 1 + 2 + 100 * 2

# What each fixed "per item" code (``allocationMethod`` EACH) took off, per line item: its value counts once per
# unit, so the amount sent is the sum of its allocations. Asked only for orders with such a code (rare), so
# the common order pays nothing; 4 points per line item would cost every page a third of its orders.
DISCOUNT_ALLOCATIONS = f"""query DiscountAllocations($id: ID!, $after: String) {{
  order(id: $id) {{ lineItems(first: 100, after: $after) {{ {_PAGE_INFO} nodes {{
    discountAllocations {{ allocatedAmountSet {{ shopMoney {{ amount }} }} discountApplication {{ index }} }}
  }} }} }}
}}"""

DISCOUNT_ALLOCATIONS_COST = 1 + 2 + 100 * (1 + 4)

MORE_FULFILLMENT_LINE_ITEMS = f"""query MoreFulfillmentLineItems($id: ID!, $after: String) {{
  fulfillment(id: $id) {{ fulfillmentLineItems(first: 100, after: $after) {{ {_PAGE_INFO} nodes {{ {FULFILLMENT_LINE_ITEM} }} }} }}
}}"""

MORE_FULFILLMENT_LINE_ITEMS_COST = 1 + 2 + 100 * 2

FULFILLMENT_LINE_ITEMS = f"""query FulfillmentLineItems($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    ... on Fulfillment {{
      id
      fulfillmentLineItems(first: {FULFILLMENT_LINE_ITEMS_FIRST}) {{ {_PAGE_INFO} nodes {{ {FULFILLMENT_LINE_ITEM} }} }}
    }}
  }}
}}"""

ORDERS_BY_ID = f"""query OrdersById($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    ... on Order {{{ORDER_FIELDS}
    }}
  }}
}}"""

# How an order without a shipping address is delivered (PICK_UP, RETAIL...: it needs no address). Asked only
# for such orders, so the common order pays nothing for it. Shopify returns fulfillment orders only with a
# ``read_*_fulfillment_orders`` scope (an empty list without one); a pickup then looks like a withheld address.
DELIVERY_METHODS_FIRST = 5
DELIVERY_METHODS = f"""query DeliveryMethods($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    ... on Order {{ id fulfillmentOrders(first: {DELIVERY_METHODS_FIRST}) {{ nodes {{ deliveryMethod {{ methodType }} }} }} }}
  }}
}}"""
DELIVERY_NODE_COST = 1 + 2 + DELIVERY_METHODS_FIRST * 2

# What decides whether an order still waits for a tracking number, and its fingerprint (cost 3 each).
PROBE_FIELDS = (
    "id createdAt cancelledAt displayFulfillmentStatus fulfillments { id status requiresShipping trackingInfo { number } }"
)
PROBE_NODE_COST = 3

PROBE_BY_ID = f"""query ProbeOrders($ids: [ID!]!) {{
  nodes(ids: $ids) {{ ... on Order {{ {PROBE_FIELDS} }} }}
}}"""

PROBE_SEARCH = f"""query AwaitingOrders($first: Int!, $after: String, $query: String!) {{
  orders(first: $first, after: $after, sortKey: ID, query: $query) {{
    {_PAGE_INFO}
    nodes {{ {PROBE_FIELDS} }}
  }}
}}"""

CHECK_COST, SCOPES_COST, BULK_STATUS_COST, MUTATION_COST = 4, 2, 1, 10

# A new install's first poll reads everything since ``full_sync_since``: with this many orders or more it is
# one bulk operation (like the full sync) instead of a hundred-odd pages. ``limit`` keeps the count cheap.
ORDERS_COUNT = """query OrdersCount($query: String!, $limit: Int!) {
  ordersCount(query: $query, limit: $limit) { count }
}"""
ORDERS_COUNT_COST = 1

CHECK = """query Check {
  shop { name myshopifyDomain plan { displayName } }
  currentAppInstallation { accessScopes { handle } }
}"""

SCOPES = """query Scopes {
  currentAppInstallation { accessScopes { handle } }
}"""

BULK_RUN = """mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"""

# API 2025-07 added ``groupObjects`` (default true); from 2026-01 it defaults to false, and child lines then
# need not follow their parent. 2025-01 and 2025-04 have no such argument and always group.
BULK_RUN_GROUPED = """mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: true) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"""
GROUP_OBJECTS_SINCE = "2025-07"

BULK_STATUS = """query BulkStatus($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url partialDataUrl } }
}"""

BULK_CANCEL = """mutation BulkCancel($id: ID!) {
  bulkOperationCancel(id: $id) { bulkOperation { id status } userErrors { field message } }
}"""


def bulk_orders_query(search: str) -> str:
    """The full-sync query for ``bulkOperationRunQuery``.

    Bulk queries allow five connections nested two deep, and no connection inside a list: line items and
    discounts become JSONL child lines (``__parentId``), fulfillments stay inline without their line
    items, which are fetched afterwards with ``FULFILLMENT_LINE_ITEMS``.
    """
    return f"""{{
  orders(query: {json.dumps(search)}, sortKey: UPDATED_AT) {{
    edges {{ node {{{_ORDER_HEAD}
      discountApplications {{ edges {{ node {{ {DISCOUNT} }} }} }}
      lineItems {{ edges {{ node {{ {LINE_ITEM} }} }} }}
      fulfillments {{ {FULFILLMENT_HEAD} }}
    }} }}
  }}
}}"""


def groups_bulk_objects(api_version: str) -> bool:
    """Whether ``api_version`` knows ``groupObjects`` (versions are ``YYYY-MM``, so text order is time order)."""
    return api_version == "unstable" or api_version >= GROUP_OBJECTS_SINCE


def bulk_run_document(api_version: str) -> str:
    """The mutation that starts the bulk query: it asks for grouped output wherever the version can say so."""
    return BULK_RUN_GROUPED if groups_bulk_objects(api_version) else BULK_RUN


def window_search(lower: str, upper: str) -> str:
    """Orders updated in [lower, upper]. Dates must be quoted, or Shopify silently drops the time part."""
    return f"updated_at:>='{lower}' AND updated_at:<='{upper}'"


def unshipped_search(since: str, status: str) -> str:
    """Orders created since ``since`` whose fulfillment status is ``status`` (unshipped, partial).

    Cancelled orders are left out: an unshipped order that was cancelled still matches
    ``fulfillment_status:unshipped``, never enters the watch (it awaits nothing) and would otherwise be
    read in full on every poll. Cancelling moves ``updatedAt``, so the window read sends the cancellation.
    """
    return f"created_at:>='{since}' AND fulfillment_status:{status} AND NOT status:cancelled"
