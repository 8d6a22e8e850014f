"""Every document the adapter sends is valid for Shopify, and the fake keeps Shopify's sharp edges."""

from __future__ import annotations

import re

import pytest

from adapters.shopify import queries
from adapters.shopify.client import ShopifyClient
from connector.errors import FatalError
from tests.shopify.conftest import MakeAdapter, keys, read
from tests.shopify.factories import fulfillment, order
from tests.shopify.fake_server import FakeShopify
from tests.shopify.schema import bulk_violations, requested_cost, validate_document
from tests.shopify.store import FakeClock

DOCUMENTS = [name for name in queries.__all__ if name.isupper() and isinstance(getattr(queries, name), str)]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_document_validates_against_shopifys_schema(name: str) -> None:
    version = "2025-07" if name == "BULK_RUN_GROUPED" else "2025-01"  # groupObjects came with 2025-07
    assert validate_document(getattr(queries, name), version)[1] == []


def test_grouped_bulk_output_is_asked_for_only_where_the_version_knows_the_argument() -> None:
    assert validate_document(queries.BULK_RUN_GROUPED, "2025-01")[1] == [
        "Unknown argument 'groupObjects' on field 'Mutation.bulkOperationRunQuery'."]
    assert [queries.bulk_run_document(v) == queries.BULK_RUN_GROUPED for v in ("2025-01", "2025-04")] == [False, False]
    assert all(queries.bulk_run_document(v) == queries.BULK_RUN_GROUPED for v in ("2025-07", "2026-01", "2027-04", "unstable"))


def test_the_unshipped_search_leaves_cancelled_orders_out(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z", cancelledAt="2026-11-20T10:00:00Z"))
    shop.add_order(order(2, updated="2026-11-20T10:00:01Z"))
    found = make_adapter().client.data(queries.PROBE_SEARCH, {
        "first": 10, "after": None, "query": queries.unshipped_search("2026-11-01T00:00:00Z", "unshipped")})
    assert [n["id"] for n in found["orders"]["nodes"]] == [order(2)["id"]]


def test_the_bulk_query_keeps_shopifys_bulk_rules() -> None:
    query = queries.bulk_orders_query(queries.window_search("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"))
    assert bulk_violations(query) == []
    in_list = query.replace("fulfillments {", "fulfillments { fulfillmentLineItems { edges { node { quantity } } } ", 1)
    assert bulk_violations(in_list) == ["Queries that contain a connection field within a list field are not currently supported."]


def test_cost_constants_match_the_published_rules() -> None:
    assert requested_cost(queries.ORDERS, {"first": 7}) == 2 + 7 * queries.ORDER_NODE_COST
    assert requested_cost(queries.ORDERS_BY_ID, {"ids": ["a"] * 7}) == 7 * queries.ORDER_NODE_COST
    assert requested_cost(queries.FULFILLMENT_LINE_ITEMS, {"ids": ["a"] * 7}) == 7 * queries.FULFILLMENT_NODE_COST
    assert requested_cost(queries.PROBE_BY_ID, {"ids": ["a"] * 250}) == 250 * queries.PROBE_NODE_COST
    assert requested_cost(queries.PROBE_SEARCH, {"first": 250}) <= 1000
    assert requested_cost(queries.DELIVERY_METHODS, {"ids": ["a"] * 7}) == 7 * queries.DELIVERY_NODE_COST
    assert (queries.ORDER_NODE_COST, queries.MORE_LINE_ITEMS_COST) == (107, 603)  # product and variant ids: 2 per line
    follow_ups = [(queries.MORE_LINE_ITEMS, queries.MORE_LINE_ITEMS_COST), (queries.MORE_DISCOUNTS, queries.MORE_DISCOUNTS_COST),
                  (queries.MORE_FULFILLMENT_LINE_ITEMS, queries.MORE_FULFILLMENT_LINE_ITEMS_COST)]
    assert [requested_cost(d, {"id": "x", "after": None}) for d, _ in follow_ups] == [cost for _, cost in follow_ups]


def test_the_fake_refuses_what_shopify_refuses(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    client = make_adapter().client
    with pytest.raises(FatalError, match="Cannot query field 'trackingNumber'"):
        client.query("query Bad { orders(first: 1) { nodes { trackingNumber } } }")
    with pytest.raises(FatalError, match="one of first or last"):
        client.query("query NoFirst { orders { nodes { id } } }")


def test_unquoted_timestamps_lose_their_time_like_on_shopify(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    """Why the adapter quotes: unquoted, 10:30 becomes midnight and an old order slips in."""
    shop.add_order(order(1, updated="2026-11-20T08:00:00Z"))
    client = make_adapter().client
    variables = {"first": 5, "after": None}
    quoted = client.data(queries.ORDERS, {**variables, "query": "updated_at:>='2026-11-20T10:30:00Z'"})
    unquoted = client.data(queries.ORDERS, {**variables, "query": "updated_at:>=2026-11-20T10:30:00Z"})
    assert quoted["orders"]["nodes"] == [] and len(unquoted["orders"]["nodes"]) == 1


def test_the_adapters_cost_estimates_are_what_shopify_charges(
    shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exact estimates mean the first request of each kind waits exactly as long as it must."""
    for n in range(14):
        data = order(n, updated=f"2026-11-20T10:{n:02d}:00Z", items=12 if n == 3 else 2)
        if n == 4:  # more discount applications than the nested page holds
            data["discountApplications"] = [{"__typename": "DiscountCodeApplication", "code": f"C{i}", "value": {
                "__typename": "PricingPercentageValue", "percentage": 1.0}} for i in range(queries.DISCOUNTS_FIRST + 2)]
        data["fulfillments"] = [fulfillment(data, 500 + n, [] if n % 2 else [f"T{n}"])]
        if n == 5:  # a local pickup: its delivery method is asked for
            data.update(shippingAddress=None, deliveryMethod="PICK_UP")
        shop.add_order(data)
    sent: list[tuple[str, dict, float | None]] = []
    original = ShopifyClient.query

    def spy(self: ShopifyClient, document: str, variables: dict | None = None, *, cost: float | None = None) -> object:
        sent.append((document, dict(variables or {}), cost))
        return original(self, document, variables, cost=cost)

    monkeypatch.setattr(ShopifyClient, "query", spy)
    make_adapter().check()
    _, cursor = read(make_adapter(full_sync_since="2025-06-01"))
    shop.store.add_tracking("gid://shopify/Fulfillment/501", "LATE")
    clock.advance(300)  # the poll interval: each run starts with a full bucket
    read(make_adapter(), cursor)
    clock.advance(300)
    read(make_adapter(full_sync=True))
    estimated = [(d, v, c) for d, v, c in sent if c is not None]
    assert len(estimated) == len(sent), "every request carries an estimate"
    assert {queries_name(d) for d, _, _ in estimated} >= {
        "Check", "Scopes", "Orders", "OrdersById", "ProbeOrders", "AwaitingOrders", "MoreLineItems", "MoreDiscounts", "BulkRun",
        "BulkStatus", "FulfillmentLineItems", "DeliveryMethods"}
    for document, variables, cost in estimated:
        assert cost == requested_cost(document, variables), queries_name(document)
    assert [r["operation"] for r in shop.requests if r.get("throttled")] == []


def queries_name(document: str) -> str:
    match = re.match(r"\s*(?:query|mutation)\s+(\w+)", document)
    return match.group(1) if match else "anonymous"


@pytest.mark.parametrize(("follow_up", "full_sync"), [
    ("MoreLineItems", False), ("MoreFulfillmentLineItems", False), ("MoreFulfillmentLineItems", True),
])
def test_an_order_deleted_before_its_follow_up_query_is_left_out(
    shop: FakeShopify, make_adapter: MakeAdapter, follow_up: str, full_sync: bool
) -> None:
    """The follow-up's root comes back null: the order is gone, the run goes on (it crashed with TypeError)."""
    shop.add_order(order(1, updated="2026-11-20T10:00:00Z"))
    big = order(2, updated="2026-11-20T10:00:01Z", items=14)
    big["fulfillments"] = [fulfillment(big, 72, ["BIG-1"])]  # 14 parcel items: beyond the nested page too
    shop.add_order(big)
    shop.add_order(order(3, updated="2026-11-20T10:00:02Z"))

    def delete_big(record: dict) -> None:
        if record["operation"] == follow_up:
            shop.store.orders.pop(big["id"], None)

    shop.on_request = delete_big
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0, full_sync=full_sync))
    assert shop.graphql_requests(follow_up), "the follow-up query was sent"
    assert sorted(keys(pages)) == ["1001", "1003"]
