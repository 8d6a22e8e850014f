"""``tracking_placed_at`` from the state machine history: when the delivery was first marked shipped, read
with one history search per page of orders, stable across re-reads, on every supported version."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest

from adapters.base import Page, Record
from adapters.shopware.mapping import first_shipped
from connector.engine import record_parts
from tests.shopware import factory as f
from tests.shopware.conftest import CLIENT_ID, SECRET, Clock, MakeAdapter, records
from tests.shopware.fake_server import FakeShopware
from tests.shopware.test_mapping import realistic_order, ship_realistic

HISTORY = "/api/search/state-machine-history"


def stamp(clock: Clock, **ago: float) -> str:
    """How Karla's model serialises a time ``ago`` before now."""
    return (clock.now - timedelta(**ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def history_searches(shop: FakeShopware) -> list[dict]:
    return [r for r in shop.requests if r["path"] == HISTORY]


def placed(record: Record) -> dict[str, str]:
    return {t.tracking_number: t.model_dump(mode="json")["tracking_placed_at"] for t in record.trackings}


def tracking_payloads(pages: list[Page]) -> dict[str, str]:
    """The bytes the engine compares: tracking part -> serialised payload."""
    return {p.part: p.payload for r in records(pages).values() for p in record_parts(r, "sw", "orders", "s")
            if p.part.startswith("tracking:")}


def parcel_order(number: str, *, codes: list[str] | None = None, status: str = "open", deliveries: int = 1) -> dict:
    items = [f.line_item("Shirt", f"SKU-{number}", deliveries, 20.0)]
    parcels = [f.delivery([(items[0], 1)], codes=[f"{c}-{n}" for c in codes or [f"T{number}"]] if n else codes or [f"T{number}"],
                          status=status, ship_to=f.address()) for n in range(deliveries)]
    return f.order(number, items=items, deliveries=parcels)


def test_a_delivery_shipped_days_after_checkout_gets_the_ship_time(shop: FakeShopware, clock: Clock,
                                                                   make_adapter: MakeAdapter) -> None:
    order = shop.insert(parcel_order("1"), at=clock.now - timedelta(days=6))  # checkout: delivery open, code known
    shop.set_delivery_state(order["deliveries"][0]["id"], f.state("shipped"), at=clock.now - timedelta(days=1))
    (record,) = records(list(make_adapter().read("orders", None))).values()
    assert placed(record) == {"T1": stamp(clock, days=1)}  # not the checkout, six days early


def test_a_later_code_and_state_change_leave_the_first_trackings_bytes_unchanged(shop: FakeShopware, clock: Clock,
                                                                                 make_adapter: MakeAdapter) -> None:
    order = shop.insert(realistic_order(), at=clock.now - timedelta(days=3))
    dhl, hermes = order["deliveries"]
    ship_realistic(shop, order, clock.now - timedelta(days=2), clock.now - timedelta(days=1))
    first = tracking_payloads(list(make_adapter().read("orders", None)))

    clock.advance(hours=5)
    shop.add_tracking_code(dhl["id"], "00340434161094042559", at=clock.now - timedelta(hours=2))
    shop.set_delivery_state(hermes["id"], f.state("shipped"), at=clock.now - timedelta(hours=1))  # the rest followed
    shop.set_delivery_state(dhl["id"], f.state("returned_partially"), at=clock.now - timedelta(minutes=50))
    shop.set_delivery_state(dhl["id"], f.state("shipped"), at=clock.now - timedelta(minutes=40))  # re-shipped
    again = tracking_payloads(list(make_adapter().read("orders", None)))

    assert len(first) == 3 and {part: again[part] for part in first} == first  # byte for byte: nothing re-sent
    assert set(again) - set(first) == {"tracking:00340434161094042559"}
    assert '"tracking_placed_at":"' + stamp(clock, days=2, hours=5) in again["tracking:00340434161094042559"].replace(" ", "")


def test_without_a_shipped_transition_the_delivery_creation_time_is_sent(shop: FakeShopware, clock: Clock,
                                                                          make_adapter: MakeAdapter) -> None:
    shop.insert(parcel_order("1", status="shipped"), at=clock.now - timedelta(days=4))  # imported already shipped
    imported = shop.insert(parcel_order("2", status="shipped_partially"), at=clock.now - timedelta(days=3))
    shop.set_delivery_state(imported["deliveries"][0]["id"], f.state("shipped"), at=clock.now - timedelta(days=1))
    found = records(list(make_adapter().read("orders", None)))
    # no entry at all; and an earliest entry that moved it *out of* a shipped state: shipped before any entry,
    # so it keeps its creation time rather than jumping to the later transition (and being sent again)
    assert placed(found["1"]) == {"T1": stamp(clock, days=4)}
    assert placed(found["2"]) == {"T2": stamp(clock, days=3)}
    assert len(shop.history) == 1


def test_one_history_search_per_page_of_orders(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    for n in range(5):
        order = shop.insert(parcel_order(str(n), deliveries=3), at=clock.now - timedelta(hours=5 - n))
        for delivery in order["deliveries"]:
            shop.set_delivery_state(delivery["id"], f.state("shipped"), at=clock.now - timedelta(hours=4 - n))
    shop.insert(f.order("open"), at=clock.now - timedelta(minutes=30))  # an order without trackings: no lookup

    pages = list(make_adapter(page_size=2).read("orders", None))

    order_pages = [r for r in shop.requests if r["path"] == "/api/search/order"]
    asked = history_searches(shop)
    assert len(order_pages) == 4 and len(asked) == 3  # 15 deliveries on 3 pages: 3 history searches, not 15; none
    # for the last, empty page
    ids = [next(q["value"] for q in r["body"]["filter"] if q["field"] == "referencedId") for r in asked]
    assert [len(i) for i in ids] == [6, 6, 3]
    assert asked[0]["body"]["sort"][0] == {"field": "createdAt", "order": "ASC"} and asked[0]["body"]["limit"] == 500
    found = records(pages)
    assert all(set(placed(found[str(n)]).values()) == {stamp(clock, hours=4 - n)} for n in range(5))


def test_history_beyond_the_page_size_is_paged_and_the_earliest_kept(shop: FakeShopware, clock: Clock,
                                                                      make_adapter: MakeAdapter) -> None:
    order = shop.insert(parcel_order("1"), at=clock.now - timedelta(days=9))
    delivery = order["deliveries"][0]["id"]
    for day in range(8, 0, -1):  # shipped, returned, shipped again, ...
        shop.set_delivery_state(delivery, f.state("shipped" if day % 2 == 0 else "returned"), at=clock.now - timedelta(days=day))
    shop.set_delivery_state(delivery, f.state("shipped"), at=clock.now - timedelta(hours=1))

    shop.max_limit = 3  # a shop capping every search at 3 rows

    (record,) = records(list(make_adapter(page_size=3).read("orders", None))).values()

    assert placed(record) == {"T1": stamp(clock, days=8)}
    # 500 refused, then 9 entries 3 per page and an empty page
    assert [(r["body"]["limit"], r["body"]["page"]) for r in history_searches(shop)] == [(500, 1), (3, 1), (3, 2), (3, 3), (3, 4)]


def test_shopware_6_4_names_the_delivery_in_entity_id(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    shop.version = "6.4.20.2"
    for n in range(3):
        order = shop.insert(parcel_order(str(n)), at=clock.now - timedelta(days=3))
        shop.set_delivery_state(order["deliveries"][0]["id"], f.state("shipped"), at=clock.now - timedelta(hours=n + 1))
    assert "referencedId" not in shop.history[-1] and shop.history[-1]["entityId"]["id"] == order["deliveries"][0]["id"]
    caplog.set_level(logging.INFO)

    found = records(list(make_adapter(page_size=2).read("orders", None)))

    assert {k: placed(r) for k, r in found.items()} == {str(n): {f"T{n}": stamp(clock, hours=n + 1)} for n in range(3)}
    fields = [next(q["field"] for q in r["body"]["filter"] if q["type"] == "equalsAny") for r in history_searches(shop)]
    assert fields == ["referencedId", "entityId.id", "entityId.id"]  # refused once, then the 6.4 name for good
    assert "has no referencedId" in caplog.text


def test_shopware_6_5_has_both_names_and_referenced_id_is_used(shop: FakeShopware, clock: Clock,
                                                               make_adapter: MakeAdapter) -> None:
    shop.version = "6.5.8.0"
    order = shop.insert(parcel_order("1"), at=clock.now - timedelta(days=3))
    shop.set_delivery_state(order["deliveries"][0]["id"], f.state("shipped"), at=clock.now - timedelta(hours=2))
    assert {"entityId", "referencedId"} <= set(shop.history[0])
    (record,) = records(list(make_adapter().read("orders", None))).values()
    assert placed(record) == {"T1": stamp(clock, hours=2)} and len(history_searches(shop)) == 1


def test_unreadable_history_falls_back_to_creation_time_with_a_warning(shop: FakeShopware, clock: Clock,
                                                                       make_adapter: MakeAdapter,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    for n in range(3):
        order = shop.insert(parcel_order(str(n)), at=clock.now - timedelta(days=3))
        shop.set_delivery_state(order["deliveries"][0]["id"], f.state("shipped"), at=clock.now - timedelta(hours=1))
    shop.history_readable = False
    adapter = make_adapter(page_size=1)

    facts = adapter.check()
    found = records(list(adapter.read("orders", None)))

    assert "history NOT readable" in facts[2] and "state_machine_history:read" in facts[2]
    assert {k: placed(r) for k, r in found.items()} == {str(n): {f"T{n}": stamp(clock, days=3)} for n in range(3)}
    assert len(history_searches(shop)) == 1  # asked once (by check), not once per page
    assert "cannot read the state machine history" in caplog.text


def test_check_probes_the_history(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    facts = make_adapter().check()
    assert facts[2] == "delivery history readable (shipping times)"
    (probe,) = history_searches(shop)
    assert probe["body"]["limit"] == 1


def test_first_shipped_keeps_the_earliest_transition_into_a_shipped_state() -> None:
    def entry(delivery: str, at: str, before: str) -> dict:
        return {"referencedId": delivery, "createdAt": f"2024-05-{at}T10:00:00.000+00:00",
                "fromStateMachineState": {"technicalName": before}}

    states = ["shipped", "shipped_partially"]
    entries = [entry("A", "21", "shipped_partially"), entry("A", "20", "open"), entry("B", "19", "shipped"),
               entry("B", "22", "returned"), {"entityId": {"id": "C", "version_id": "x"}, "createdAt": "2024-05-18T10:00:00.000+00:00"}]
    assert first_shipped(entries, states) == {"a": "2024-05-20T10:00:00.000+00:00", "c": "2024-05-18T10:00:00.000+00:00"}


def test_the_fake_history_search_refuses_unknown_fields(shop: FakeShopware, clock: Clock) -> None:
    order = shop.insert(parcel_order("1"), at=clock.now - timedelta(days=1))
    entry = shop.set_delivery_state(order["deliveries"][0]["id"], f.state("shipped"), at=clock.now - timedelta(hours=1))
    token = httpx.post(f"{shop.url}/api/oauth/token", json={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                                           "client_secret": SECRET}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    with httpx.Client(base_url=shop.url, headers=headers) as http:
        by = {"filter": [{"type": "equalsAny", "field": "entityId.id", "value": [order["deliveries"][0]["id"]]}]}
        refused = http.post(HISTORY, json=by)
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["code"] == "FRAMEWORK__UNMAPPED_FIELD" and "entityId" in refused.json()["errors"][0]["detail"]
        found = http.post(HISTORY, json={"filter": [{"type": "equals", "field": "toStateMachineState.technicalName", "value": "shipped"}],
                                         "includes": {"state_machine_history": ["referencedId", "createdAt"]}}).json()["data"]
    assert found == [{"referencedId": entry["referencedId"], "createdAt": entry["createdAt"], "apiAlias": "state_machine_history"}]


def test_no_delivery_states_means_no_history_search(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    """An empty ``equalsAny`` is a 400 in Shopware (and in the fake): ``check`` and the sync skip the search."""
    order = shop.insert(parcel_order("1"), at=clock.now - timedelta(days=1))
    shop.set_delivery_state(order["deliveries"][0]["id"], f.state("shipped"), at=clock.now - timedelta(hours=1))
    adapter = make_adapter(delivery_states=[])
    facts = adapter.check()  # was: FatalError "refused /search/state-machine-history: 400 FRAMEWORK__INVALID_FILTER_QUERY"
    assert "delivery_states is empty" in facts[2]
    (record,) = records(list(adapter.read("orders", None))).values()
    assert record.trackings == [] and history_searches(shop) == []


def test_the_fake_refuses_an_empty_equals_any(shop: FakeShopware, clock: Clock) -> None:
    token = httpx.post(f"{shop.url}/api/oauth/token", json={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                                           "client_secret": SECRET}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    empty = {"type": "equalsAny", "field": "toStateMachineState.technicalName", "value": []}
    with httpx.Client(base_url=shop.url, headers=headers) as http:
        for path in (HISTORY, "/api/search/order"):  # refused before any row is read, nested too
            refused = http.post(path, json={"filter": [{"type": "multi", "operator": "OR", "queries": [empty]}]})
            assert refused.status_code == 400
            (error,) = refused.json()["errors"]
            assert error["code"] == "FRAMEWORK__INVALID_FILTER_QUERY" and 'equalsAny' in error["detail"]
