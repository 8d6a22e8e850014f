"""Field-by-field mapping of a realistic order, read through the fake (so ``includes`` and the requested
associations must carry every field the mapping needs)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adapters.shopware.config import ShopwareConfig
from adapters.shopware.criteria import INCLUDES
from adapters.shopware.mapping import map_order
from connector.engine import record_parts
from connector.karla.models import dump
from tests.shopware import factory as f
from tests.shopware.conftest import Clock, MakeAdapter, records, searches
from tests.shopware.fake_server import FakeShopware, shopware_time


def realistic_order() -> dict:
    shirt = f.line_item("Organic Cotton T-Shirt", "SW10023.2", 2, 24.95, payload={"productNumber": "SW10023.2", "parentId": "p-shirt"})
    mug = f.line_item("Enamel Mug", "SW10077", 1, 12.0, cover=None)
    deposit = f.line_item("Bottle deposit", "PFAND", 1, 0.25, kind="deposit", cover=None)
    gift = f.line_item("Gift set", "GIFT", 1, 15.0, kind="container", cover=None)
    soap = f.line_item("Gift set: soap", "SOAP", 1, 15.0, parent_id=gift["id"])
    summer = f.promotion("SUMMER5", -5.0)
    auto = f.promotion("", -6.22, "percentage", label="10% off everything", value=10)
    ship_to = f.address("Max", "Mustermann", "Leopoldstraße 7", "80802", "München", extra="Hinterhaus", region=("DE-BY", "Bavaria"),
                        phone="+49 89 1234567")
    dhl = f.delivery([(shirt, 1), (deposit, 1)], codes=["00340434161094042557", " 00340434161094042558 "], ship_to=ship_to)
    hermes = f.delivery([(shirt, 1), (mug, 1)], codes=["H1234567890"], method=f.shipping_method("Hermes Standard", url=""),
                        ship_to=ship_to)
    return f.order("10087", items=[shirt, mug, deposit, gift, soap, summer, auto], deliveries=[dhl, hermes], tags=("VIP",),
                   amountTotal=70.83, shippingTotal=4.9)


def ship_realistic(shop: FakeShopware, order: dict, dhl_at: datetime, hermes_at: datetime) -> None:
    """Both deliveries of ``realistic_order`` (created open at checkout) shipped later, DHL in full."""
    dhl, hermes = order["deliveries"]
    shop.set_delivery_state(dhl["id"], f.state("shipped"), at=dhl_at)
    shop.set_delivery_state(hermes["id"], f.state("shipped_partially"), at=hermes_at)


def test_a_realistic_order_maps_field_by_field(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    order = shop.insert(realistic_order(), at=clock.now - timedelta(hours=3))
    dhl, hermes = order["deliveries"]
    ship_realistic(shop, order, clock.now - timedelta(hours=2), clock.now - timedelta(minutes=90))
    shop.add_tracking_code(dhl["id"], "00340434161094042559", at=clock.now - timedelta(hours=1))
    adapter = make_adapter(deposit_line_item_type="deposit", carriers={"Hermes Standard": "hrs"},
                           sales_channels={f.CHANNEL: "karla-de"})

    (record,) = records(list(adapter.read("orders", None))).values()

    assert (record.key, record.id_type, record.shop_slug) == ("10087", "order_number", "karla-de")
    shirt = {"sku": "SW10023.2", "title": "Organic Cotton T-Shirt", "price": 24.95, "product_id": "p-shirt",
             "variant_id": order["lineItems"][0]["productId"],
             "images": [{"src": "https://shop.example.com/media/sw10023.2.jpg"}]}
    mug = {"sku": "SW10077", "title": "Enamel Mug", "price": 12.0, "product_id": order["lineItems"][1]["productId"],
           "variant_id": order["lineItems"][1]["productId"], "images": []}
    deposit = {"sku": "PFAND", "title": "Bottle deposit", "price": 0.25, "images": []}
    gift = {"sku": "GIFT", "title": "Gift set", "price": 15.0, "quantity": 1, "images": []}
    assert dump(record.order) == {  # type: ignore[arg-type]
        "order_number": "10087", "external_id": order["id"], "order_placed_at": "2024-05-14T09:21:47.512000Z",
        "email_id": "jane.doe@example.com", "currency": "EUR", "total_order_price": 70.83, "shipping_price": 4.9,
        # the gift set (a container: its soap is inside its price) is a product and in the subtotal, so that
        # 77.15 - 11.22 + 4.90 = 70.83 as in Shopware; it used to be left out (62.15, 15.00 unaccounted for)
        "sub_total_price": 77.15, "discount_price": 11.22,
        # positive, and meaning what type says: 10 % was sent as "-6.22" percent
        "discounts": [{"code": "SUMMER5", "amount": "5.0", "type": "fixed_amount"},
                      {"code": "10% off everything", "amount": "10.0", "type": "percentage"}],
        "address": {"zip_code": "80802", "name": "Max Mustermann", "address_line_1": "Leopoldstraße 7",
                    "address_line_2": "Hinterhaus", "street": "Leopoldstraße 7, Hinterhaus", "city": "München",
                    "province": "Bavaria", "province_code": "BY", "country": "Germany", "country_code": "DE",
                    "phone": "+49 89 1234567"},
        "products": [{**shirt, "quantity": 2}, {**mug, "quantity": 1}, {**deposit, "quantity": 1}, gift],
        "segments": ["Shopware.tag.VIP", "Shopware.sales_channel.Storefront"],
        "external_customer_id": "10042",
    }
    parcels = {t.tracking_number: dump(t) for t in record.trackings}
    dhl_url = "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode="
    # when each delivery was marked shipped (its state history), not checkout (createdAt) nor its later edits
    shipped = (clock.now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for code in ("00340434161094042557", "00340434161094042558", "00340434161094042559"):
        assert parcels[code] == {"tracking_number": code, "tracking_url": dhl_url + code, "tracking_placed_at": shipped,
                                 "carrier_reference": "dhl", "products": [{**shirt, "quantity": 1}, {**deposit, "quantity": 1}]}
    assert parcels["H1234567890"] == {  # position quantities, the configured carrier alias, no URL template
        "tracking_number": "H1234567890", "carrier_reference": "hrs",
        "tracking_placed_at": (clock.now - timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "products": [{**shirt, "quantity": 1}, {**mug, "quantity": 1}]}
    assert len(parcels) == 4


def test_includes_keep_responses_small_and_associations_are_requested(shop: FakeShopware, clock: Clock,
                                                                      make_adapter: MakeAdapter) -> None:
    shop.insert(realistic_order(), at=clock.now - timedelta(hours=3))
    list(make_adapter().read("orders", None))
    body = searches(shop)[0]["body"]
    deliveries = body["associations"]["deliveries"]["associations"]
    assert {"shippingMethod", "stateMachineState", "positions", "shippingOrderAddress"} <= set(deliveries)
    assert set(deliveries["shippingOrderAddress"]["associations"]) == {"country", "countryState"}
    assert body["includes"] == INCLUDES and "deepLinkCode" not in INCLUDES["order"]


def test_guest_and_unknown_customers_get_no_external_customer_id(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    shop.insert(f.order("1", guest=True), at=clock.now - timedelta(hours=1))
    deleted = f.order("2")
    deleted["orderCustomer"]["customer"] = None  # the customer was deleted: customerId is SET NULL
    shop.insert(deleted, at=clock.now - timedelta(hours=1))
    shop.insert(f.order("3"), at=clock.now - timedelta(hours=1))
    got = {k: dump(r.order).get("external_customer_id") for k, r in records(list(make_adapter().read("orders", None))).items()}  # type: ignore[arg-type]
    assert got == {"1": None, "2": None, "3": "10042"}


def test_order_without_deliveries_uses_the_billing_address(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    other = f.address("Erika", "Musterfrau", "Hauptstraße 5", "50667", "Köln", region=None)
    billing = f.address("Jane", "Doe", zipcode="20095", city="Hamburg")
    order = f.order("4", deliveries=[], billing=billing)
    order["addresses"] = [other, billing]
    shop.insert(order, at=clock.now - timedelta(hours=1))
    (record,) = records(list(make_adapter().read("orders", None))).values()
    assert dump(record.order)["address"]["city"] == "Hamburg" and record.trackings == []  # type: ignore[arg-type]


def test_an_order_without_zip_code_is_rejected_with_the_field(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    shop.insert(f.order("5", billing=f.address(zipcode=None)), at=clock.now - timedelta(hours=1))
    shop.insert(f.order("6"), at=clock.now - timedelta(hours=1))
    pages = list(make_adapter().read("orders", None))
    (rejected,) = [r for p in pages for r in p.rejected]
    assert rejected.key == "5" and "address.zip_code" in rejected.reason and "shopware order 5" in rejected.location
    assert set(records(pages)) == {"6"}


def test_new_rows_have_null_updated_at(shop: FakeShopware, clock: Clock) -> None:
    order = shop.insert(f.order("7"), at=clock.now)
    assert order["updatedAt"] is None and order["deliveries"][0]["updatedAt"] is None
    assert order["createdAt"] == shopware_time(clock.now)


def _tracking_hashes(order: dict) -> dict[str, str]:
    config = ShopwareConfig(base_url="https://shop.example", client_id="SWIA", client_secret="x", shop_slug="s")
    record = map_order(order, config, datetime(2000, 1, 1, tzinfo=timezone.utc))
    return {p.part: p.hash for p in record_parts(record, "sw", "orders", "s") if p.part.startswith("tracking:")}  # type: ignore[arg-type]


def _shipped_order(status: str = "shipped") -> tuple[dict, dict]:
    items = [f.line_item("Shirt", "SKU-1", 1, 20.0)]
    delivery = f.delivery([(items[0], 1)], codes=["T1"], status=status, ship_to=f.address())
    delivery["createdAt"] = "2030-12-30T08:00:00.000+00:00"  # as FakeShopware.insert stamps it
    delivery["updatedAt"] = "2030-12-31T09:00:00.000+00:00"  # the ERP wrote T1
    return f.order("1001", items=items, deliveries=[delivery], status="in_progress"), delivery


def test_adding_a_second_code_to_a_delivery_does_not_resend_the_first_tracking() -> None:
    order, delivery = _shipped_order()
    before = _tracking_hashes(order)
    delivery["trackingCodes"] = ["T1", "T2"]
    delivery["updatedAt"] = "2031-01-01T10:00:00.000+00:00"  # what Shopware does when the ERP adds T2
    after = _tracking_hashes(order)
    assert set(after) == {"tracking:T1", "tracking:T2"} and after["tracking:T1"] == before["tracking:T1"]


def test_a_delivery_state_change_does_not_resend_its_trackings() -> None:
    order, delivery = _shipped_order("shipped_partially")
    before = _tracking_hashes(order)
    delivery["stateMachineState"] = f.state("shipped")
    delivery["updatedAt"] = "2031-01-02T10:00:00.000+00:00"  # a state transition bumps only the delivery's updatedAt
    assert _tracking_hashes(order) == before == {"tracking:T1": before["tracking:T1"]}


def test_records_list_every_live_parcel_so_a_withdrawn_code_is_noticed(shop: FakeShopware, clock: Clock,
                                                                       make_adapter: MakeAdapter) -> None:
    """``complete_trackings``: the engine reports a parcel Karla has that such a record no longer lists."""
    items = [f.line_item("Shirt", "SKU-1", 1, 20.0)]
    placed = shop.insert(f.order("1", items=items, deliveries=[f.delivery([(items[0], 1)], codes=[], ship_to=f.address())]),
                         at=clock.now - timedelta(hours=3))
    delivery = placed["deliveries"][0]["id"]
    shop.set_delivery_state(delivery, f.state("shipped"), at=clock.now - timedelta(hours=2))
    shop.add_tracking_code(delivery, "00340434161094042557", at=clock.now - timedelta(hours=2))
    adapter = make_adapter()
    assert adapter.streams()[0].complete_trackings
    pages = list(adapter.read("orders", None))
    assert [t.tracking_number for t in records(pages)["1"].trackings] == ["00340434161094042557"]
    shop.set_delivery_state(delivery, f.state("cancelled"))
    clock.advance(minutes=5)
    (record,) = records(list(make_adapter().read("orders", pages[-1].cursor))).values()
    assert record.order is not None and not record.trackings
