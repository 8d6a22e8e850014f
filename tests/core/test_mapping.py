"""Pure logic: Karla models, carrier mapping, splitting records into parts, building bulk items."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from adapters.base import Record
from connector.items import Item, batches
from connector.engine import record_parts
from connector.karla.carriers import carrier_fields
from connector.karla.models import OrderPlacement, Product, Tracking, dump, explain, serialise
from state import PendingRow


def order(number: str = "1001", **extra: object) -> OrderPlacement:
    return OrderPlacement.model_validate({"order_number": number, "address": {"zip_code": "10119"}, **extra})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Hermes", {"carrier_reference": "hrs"}),
        ("DHL Express", {"carrier_reference": "dhlexp"}),
        ("dhl", {"carrier_reference": "dhl"}),
        ("Austrian Post", {"carrier_reference": "postat"}),
        ("Royal Mail", {"carrier_reference": "royalmail"}),
        ("Kiala Express", {"tracking_company": "Kiala Express"}),
        ("", {}),
    ],
)
def test_carrier_names_map_to_the_enum_or_fall_back(name: str, expected: dict[str, str]) -> None:
    assert carrier_fields(name) == expected


def test_carrier_overrides_win() -> None:
    assert carrier_fields("Kiala Express", {"kiala express": "dpd"}) == {"carrier_reference": "dpd"}


def test_unknown_carrier_reference_is_demoted_to_tracking_company() -> None:
    tracking = Tracking(tracking_number="T1", carrier_reference="hermes")
    assert dump(tracking) == {"tracking_number": "T1", "tracking_company": "hermes"}


def test_a_parcel_without_products_leaves_the_list_out() -> None:
    """Karla reads a missing list as "all of the order's products" (an update leaves them as they are), an empty
    one as "this parcel holds nothing" (an update clears them): a parcel whose products are unknown says nothing."""
    assert serialise(Tracking(tracking_number="T1")) == '{"tracking_number":"T1"}'
    assert serialise(Tracking(tracking_number="T1", products=[])) == '{"tracking_number":"T1"}'
    with_one = serialise(Tracking(tracking_number="T1", products=[Product(sku="A", quantity=1)]))
    assert with_one == '{"tracking_number":"T1","products":[{"sku":"A","quantity":1,"images":[]}]}'


def test_order_requires_zip_and_defaults_external_id() -> None:
    assert order().external_id == "1001"
    with pytest.raises(ValidationError, match="zip_code"):
        OrderPlacement.model_validate({"order_number": "1", "address": {"zip_code": ""}})


@pytest.mark.parametrize(("given", "reason"), [
    ("E1$", "currency: 'E1$' is not a three-letter currency code such as EUR, CHF or USD"),
    ("euro", "currency: String should have at most 3 characters"),
])
def test_currency_is_an_upper_case_iso_code(given: str, reason: str) -> None:
    # Karla takes ISO 4217 codes (karla-docs 003): "eur" was sent as written and "E1$" was sent at all.
    assert order(currency=" eur ").currency == "EUR"
    with pytest.raises(ValidationError) as exc:
        order(currency=given)
    assert explain(exc.value) == reason


def test_record_splits_into_order_and_tracking_parts() -> None:
    record = Record(key="1001", order=order(), trackings=[Tracking(tracking_number="A"), Tracking(tracking_number="B")])
    parts = record_parts(record, "src", "orders", "shop")
    assert [p.part for p in parts] == ["order", "tracking:A", "tracking:B"]
    assert len({p.hash for p in parts}) == 3 and all(p.slug == "shop" for p in parts)
    routed = record_parts(Record(key="1", order=order("1"), shop_slug="other"), "src", "orders", "shop")
    assert routed[0].slug == "other"


def test_trackings_sharing_a_number_are_one_parcel_with_both_products() -> None:
    # Two fulfillments packed in one box under one label: the last one used to replace the first,
    # and Karla's parcel listed only its products.
    first = Tracking.model_validate({"tracking_number": "1Z9", "tracking_placed_at": "2026-11-20T09:05:00Z",
                                     "external_shipment_id": "9001", "products": [{"sku": "A", "quantity": 1}, {"sku": "B"}]})
    second = Tracking.model_validate({"tracking_number": "1Z9", "tracking_placed_at": "2026-11-20T09:00:00Z",
                                      "tracking_url": "https://t/1Z9", "external_shipment_id": "9002",
                                      "products": [{"sku": "A", "quantity": 2}, {"sku": "C", "quantity": 1}, {"sku": "B"}]})
    other = Tracking(tracking_number="2X")
    parts = record_parts(Record(key="1001", trackings=[first, other, second]), "src", "orders", "shop")
    assert [p.part for p in parts] == ["tracking:1Z9", "tracking:2X"]
    parcel = json.loads(parts[0].payload)
    skus = [(p["sku"], p.get("quantity")) for p in parcel["products"]]
    assert skus == [("A", 3), ("B", None), ("C", 1), ("B", None)]
    assert parcel["tracking_placed_at"].startswith("2026-11-20T09:00:00")  # the earlier of the two
    assert parcel["external_shipment_id"] == "9001" and parcel["tracking_url"] == "https://t/1Z9"
    # the very same tracking listed twice is one parcel, its quantities not doubled
    twice = record_parts(Record(key="1001", trackings=[first, first]), "src", "orders", "shop")
    assert [(p["sku"], p.get("quantity")) for p in json.loads(twice[0].payload)["products"]] == [("A", 1), ("B", None)]
    # a record without shared numbers is split as before (the same bytes: no re-send after upgrading)
    alone = record_parts(Record(key="1001", trackings=[first]), "src", "orders", "shop")
    assert json.loads(alone[0].payload)["products"][0] == {"sku": "A", "quantity": 1, "images": []}


def _row(key: str, part: str, payload: str, slug: str = "shop") -> PendingRow:
    return PendingRow(1, slug, key, "order_number", part, payload.encode(), "h", "src", "orders", None, 0.0, 0, 0.0)


def test_item_carries_order_and_trackings_and_is_valid_json() -> None:
    item = Item.build([_row("Ä1", "order", '{"order_number":"Ä1"}'), _row("Ä1", "tracking:X", '{"tracking_number":"X"}')])
    assert json.loads(item.body) == {
        "id": "Ä1", "id_type": "order_number", "order": {"order_number": "Ä1"}, "trackings": [{"tracking_number": "X"}],
    }
    only_tracking = Item.build([_row("2", "tracking:Y", '{"tracking_number":"Y"}')])
    assert "order" not in json.loads(only_tracking.body)


def test_interleaved_shops_still_fill_their_batches_and_only_full_ones_go_when_asked() -> None:
    # early delivery takes orders in the order they were queued; a Shopware source may alternate shops
    items = [Item.build([_row(str(i), "order", "{}", slug="ab"[i % 2])]) for i in range(1010)]
    full = list(batches(iter(items), max_items=50, max_bytes=1_000_000, partial=False))
    assert len(full) == 20 and all(len(b) == 50 and {i.slug for i in b} == {s} for s, b in full)
    everything = list(batches(iter(items), max_items=50, max_bytes=1_000_000))
    assert [len(b) for _, b in everything[-2:]] == [5, 5] and sum(len(b) for _, b in everything) == 1010


def test_batches_respect_both_limits_and_never_mix_shops() -> None:
    items = [Item.build([_row(str(i), "order", '{"x":"' + "y" * 100 + '"}', slug="a" if i < 7 else "b")]) for i in range(10)]
    size = len(items[0].body)
    made = list(batches(iter(items), max_items=3, max_bytes=2 + 2 * size + 1))
    assert {shop: [len(b) for s, b in made if s == shop] for shop in "ab"} == {"a": [2, 2, 2, 1], "b": [2, 1]}
    assert all(len({i.slug for i in b}) == 1 for _, b in made)
    for _, batch in made:
        assert 2 + sum(len(i.body) for i in batch) + len(batch) - 1 <= 2 + 2 * size + 1
