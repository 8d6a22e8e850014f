"""The sandbox refuses what Karla's documented schema refuses (karla-docs 003: required keys, enums, types,
``expected_number_of_shipments <= 100``; discount ``code`` and image ``src`` required), on its own models,
so a regression in ``connector.karla.models`` cannot pass the tests; and it takes what the connector builds,
every field filled. Its zip code shapes are its own rule (README): common forms of them are taken."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
import pytest

from connector.karla.models import Address, Discount, Image, OrderFulfillment, OrderPlacement, Product, Tracking, dump
from connector.sandbox import Sandbox


@pytest.fixture()
def http() -> Iterator[httpx.Client]:
    with Sandbox(credentials={"shop": "key"}) as sb, httpx.Client(base_url=f"{sb.url}/v1/shops/shop", auth=("shop", "key")) as client:
        yield client


def item(**order: object) -> dict:
    base = {"order_number": "1", "address": {"zip_code": "10119", "country_code": "DE"}}
    return {"id": "1", "order": base | order, "trackings": []}


PRODUCT = {"title": "Shirt", "quantity": 1}
REFUSED = {
    "shipments over 100": (item(expected_number_of_shipments=500), ["order", "expected_number_of_shipments"], "less_than_equal"),
    "discount without code": (item(discounts=[{"amount": "10.0", "type": "percentage"}]), ["order", "discounts", 0, "code"], "missing"),
    "image without src": (item(products=[PRODUCT | {"images": [{"alt": "front"}]}]), ["order", "products", 0, "images", 0, "src"], "missing"),
    "product type gift": (item(products=[PRODUCT | {"type": "gift"}]), ["order", "products", 0, "type"], "enum"),
    "quantity many": (item(products=[PRODUCT | {"quantity": "many"}]), ["order", "products", 0, "quantity"], "int_parsing"),
    "placed yesterday": (item(order_placed_at="yesterday"), ["order", "order_placed_at"], "datetime_from_date_parsing"),
    "total abc": (item(total_order_price="abc"), ["order", "total_order_price"], "float_parsing"),
    "currency euro-ish": (item(currency="euro-ish"), ["order", "currency"], "string_pattern_mismatch"),
    "parcel product quantity": ({"id": "1", "trackings": [{"tracking_number": "T", "products": [{"quantity": 1.5}]}]},
                                ["trackings", 0, "products", 0, "quantity"], "int_from_float"),
    "no address": ({"id": "1", "order": {"order_number": "1"}, "trackings": []}, ["order", "address"], "missing"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_docs_refuse_is_refused_naming_the_field(http: httpx.Client, case: str) -> None:
    body, loc, type_ = REFUSED[case]
    for path, sent, where in (("/orders", body, ["body"]), ("/orders/bulk", [item(), body], ["body", 1])):
        response = http.put(path, json=sent)
        assert (response.status_code, response.json()["key"]) == (422, "invalid_payload"), response.text
        assert [(e["loc"], e["type"]) for e in response.json()["errors"]] == [([*where, *loc], type_)]


@pytest.mark.parametrize(("country", "zip_code"), [("DE", "D-10115"), ("PL", "00950"), ("US", "123456789"), ("AT", "A-1010"), ("GB", "SW1A 1AA")])
def test_common_zip_code_forms_are_taken(http: httpx.Client, country: str, zip_code: str) -> None:
    assert http.put("/orders", json=item(address={"zip_code": zip_code, "country_code": country})).status_code == 200


def test_what_the_connector_builds_with_every_field_is_taken(http: httpx.Client) -> None:
    when = datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)
    product = Product(title="Shirt", sku="A1", quantity=2, price=9.5, size="M", weight=200.0,
                      images=[Image(src="https://cdn.example/a1.png", alt="front")], product_id="p1", variant_id="v1")
    order = OrderPlacement(
        order_number="1", external_id="gid-1", order_name="#1", order_placed_at=when, email_id="a@example.com", currency="eur",
        total_order_price=24.0, shipping_price=4.99, sub_total_price=19.0, discount_price=1.0, products=[product],
        discounts=[Discount(code="SPRING", amount="1.0", type="fixed_amount")], segments=["vip"], external_customer_id="c1",
        order_status_url="https://shop.example/1", expected_number_of_shipments=2,
        address=Address(zip_code="10119", name="Jana", company="Acme", address_line_1="Str. 1", address_line_2="2nd floor",
                        street="Str. 1, 2nd floor", city="Berlin", province="Berlin", province_code="BE", country="Germany",
                        country_code="de", phone="+49 30 1"),
    )
    tracking = Tracking(tracking_number="T1", tracking_url="https://t.example/T1", tracking_placed_at=when, carrier_reference="dhl",
                        external_shipment_id="f1", products=[product])
    unmapped = Tracking(tracking_number="T2", carrier_reference="Hermes Germany")  # becomes tracking_company
    body = dump(OrderFulfillment(id="1", order=order, trackings=[tracking, unmapped]))
    response = http.put("/orders/bulk", json=[body])
    assert response.status_code == 200, response.text
