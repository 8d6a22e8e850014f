"""Money through the fake: shipping vouchers, capped percentages and net-priced (B2B) orders, read with the
adapter's real ``includes`` (prices are structs the fake filters by their ``apiAlias`` too)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connector.karla.models import dump, merge_trackings
from tests.shopware import factory as f
from tests.shopware.conftest import Clock, MakeAdapter, records
from tests.shopware.fake_server import FakeShopware


def _read(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter, order: dict[str, Any]) -> Any:
    shop.insert(order, at=clock.now - timedelta(hours=2))
    (record,) = records(list(make_adapter().read("orders", None))).values()
    return record


def _voucher_order() -> dict[str, Any]:
    """2 x 24.95 with a 100 % shipping voucher: Shopware's 0.00 placeholder line plus a -4.90 delivery."""
    shirt = f.line_item("Shirt", "SW1", 2, 24.95)
    free = f.promotion("FREESHIP", 0.0, "percentage", label="Free shipping", value=100, scope="delivery")
    return f.order("1", items=[shirt, free], shipping=4.9, shipping_voucher=4.9)


def test_a_shipping_voucher_is_in_the_shipping_price_not_an_order_discount(shop: FakeShopware, clock: Clock,
                                                                           make_adapter: MakeAdapter) -> None:
    order = _voucher_order()
    assert [d["shippingCosts"]["totalPrice"] for d in order["deliveries"]] == [4.9, -4.9]
    record = _read(shop, clock, make_adapter, order)
    placed = dump(record.order)  # type: ignore[arg-type]
    # was: discounts [{"FREESHIP", "100.0", "percentage"}], i.e. the whole order free
    assert placed["discounts"] == [] and placed["discount_price"] == 0.0
    assert (placed["shipping_price"], placed["sub_total_price"], placed["total_order_price"]) == (0.0, 49.9, 49.9)


def test_a_shipping_vouchers_delivery_is_no_parcel(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    """An ERP (or a flow picking the wrong delivery, shopware PR #4924) writes the code on both deliveries."""
    order = shop.insert(_voucher_order(), at=clock.now - timedelta(hours=2))
    real, voucher = order["deliveries"]
    for delivery, minutes in ((real, 60), (voucher, 30)):  # shipped apart: not one tracking listed twice
        shop.set_delivery_state(delivery["id"], f.state("shipped"), at=clock.now - timedelta(minutes=minutes))
        shop.add_tracking_code(delivery["id"], "00340434161094042557", at=clock.now - timedelta(minutes=minutes))
    shop.add_tracking_code(voucher["id"], "ONLY-ON-THE-VOUCHER-ROW", at=clock.now - timedelta(hours=1))
    (record,) = records(list(make_adapter().read("orders", None))).values()
    parcels = {t.tracking_number: dump(t) for t in merge_trackings(record.trackings)}
    assert set(parcels) == {"00340434161094042557", "ONLY-ON-THE-VOUCHER-ROW"}  # a code is never dropped
    assert [p["quantity"] for p in parcels["00340434161094042557"]["products"]] == [2]  # not 4


def test_a_capped_percentage_promotion_is_sent_as_the_money_it_took_off(shop: FakeShopware, clock: Clock,
                                                                        make_adapter: MakeAdapter) -> None:
    shirt = f.line_item("Shirt", "SW1", 4, 25.0)
    capped = f.promotion("TEN", -5.0, "percentage", value=10, max_value=5)  # 10 %, at most 5.00: 5.00, not 10.00
    plain = f.promotion("", -9.5, "percentage", label="5% off", value=5)
    record = _read(shop, clock, make_adapter, f.order("2", items=[shirt, capped, plain]))
    assert dump(record.order)["discounts"] == [  # type: ignore[arg-type]
        {"code": "TEN", "amount": "5.0", "type": "fixed_amount"}, {"code": "5% off", "amount": "5.0", "type": "percentage"}]


def test_a_net_priced_order_is_sent_as_the_customer_pays_it(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    """B2B: items, shipping and promotions are net in Shopware; the total is gross. Karla gets gross throughout."""
    shirt = f.line_item("Shirt", "SW1", 2, 21.0)  # net: 42.00 + 7.98 tax = 49.98
    voucher = f.promotion("B2B", -4.2)  # net: -4.20 - 0.80 tax = -5.00
    order = f.order("3", items=[shirt, voucher], shipping=4.2, tax_status="net")  # net shipping 4.20 + 0.80 = 5.00
    assert (order["amountNet"], order["amountTotal"]) == (42.0, 49.98)
    order["deliveries"][0]["trackingCodes"] = ["T-NET"]
    order["deliveries"][0]["stateMachineState"] = f.state("shipped")
    record = _read(shop, clock, make_adapter, order)
    placed = dump(record.order)  # type: ignore[arg-type]
    assert (placed["sub_total_price"], placed["shipping_price"], placed["discount_price"]) == (49.98, 5.0, 5.0)
    assert placed["total_order_price"] == round(placed["sub_total_price"] + placed["shipping_price"] - placed["discount_price"], 2)
    assert placed["discounts"] == [{"code": "B2B", "amount": "5.0", "type": "fixed_amount"}]
    assert [p["price"] for p in placed["products"]] == [24.99]
    assert [p["price"] for t in record.trackings for p in dump(t)["products"]] == [24.99]


def test_a_gross_order_keeps_its_prices(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    record = _read(shop, clock, make_adapter, f.order("4", items=[f.line_item("Shirt", "SW1", 2, 24.95)], shipping=4.9))
    placed = dump(record.order)  # type: ignore[arg-type]
    assert (placed["sub_total_price"], placed["shipping_price"], placed["total_order_price"]) == (49.9, 4.9, 54.8)
    assert [p["price"] for p in placed["products"]] == [24.95]


def test_custom_items_are_products_and_credits_are_discounts(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    """The Administration's "Add custom item" and "Add credit". Was: the engraving missing from products and
    subtotal, the credit from the discounts, so sub_total - discounts + shipping missed the total by 5.00."""
    shirt = f.line_item("Shirt", "SKU-1", 1, 50.0)
    engraving = f.line_item("Gravur", "custom-1", 1, 10.0, kind="custom", cover=None, payload={})
    credit = f.line_item("Kulanz", "credit-1", 1, -5.0, kind="credit", cover=None, payload={})
    shipped = f.delivery([(shirt, 1), (engraving, 1)], codes=["T1"], status="shipped", ship_to=f.address())
    record = _read(shop, clock, make_adapter, f.order("1", items=[shirt, engraving, credit], deliveries=[shipped]))
    placed = dump(record.order)  # type: ignore[arg-type]
    assert [p["title"] for p in placed["products"]] == ["Shirt", "Gravur"]
    assert placed["discounts"] == [{"code": "Kulanz", "amount": "5.0", "type": "fixed_amount"}]
    assert (placed["sub_total_price"], placed["discount_price"], placed["shipping_price"]) == (60.0, 5.0, 4.9)
    assert round(placed["sub_total_price"] - placed["discount_price"] + placed["shipping_price"], 2) == placed["total_order_price"]
    assert [p["title"] for p in dump(record.trackings[0])["products"]] == ["Shirt", "Gravur"]
