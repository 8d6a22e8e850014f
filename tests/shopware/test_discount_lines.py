"""Lines that take money off besides promotions and credits: core's ``discount`` type (customer-group or
bulk-discount plugins write it) and a plugin's own negative type are in ``amountTotal``, so they are sent as
``fixed_amount`` discounts; a positive line of an unknown type is warned about once per process."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from connector.karla.models import dump
from tests.shopware import factory as f
from tests.shopware.conftest import Clock, MakeAdapter, records
from tests.shopware.fake_server import FakeShopware


def _placed(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter, *orders: dict[str, Any]) -> dict[str, Any]:
    for order in orders:
        shop.insert(order, at=clock.now - timedelta(hours=1))
    return {key: dump(r.order) for key, r in records(list(make_adapter().read("orders", None))).items()}  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["discount", "b2b_customer_group_discount"])
def test_a_negative_line_of_another_type_is_a_fixed_amount_discount(kind: str, shop: FakeShopware, clock: Clock,
                                                                    make_adapter: MakeAdapter) -> None:
    shirt = f.line_item("Shirt", "SKU-1", 2, 50.0)
    group = f.line_item("Customer group discount 10%", "DISC", 1, -10.0, kind=kind, cover=None,
                        payload={"discountType": "percentage", "value": "10"})  # not a promotion's payload: the money counts
    placed = _placed(shop, clock, make_adapter, f.order("1001", items=[shirt, group], shipping=5.0))["1001"]
    assert placed["total_order_price"] == 95.0
    assert (placed["sub_total_price"], placed["discount_price"], placed["shipping_price"]) == (100.0, 10.0, 5.0)  # was 100, 0, 5
    assert placed["discounts"] == [{"code": "Customer group discount 10%", "amount": "10.0", "type": "fixed_amount"}]
    assert [p["sku"] for p in placed["products"]] == ["SKU-1"]


def test_a_positive_line_of_an_unknown_type_is_warned_about_once(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    orders = [f.order(n, items=[f.line_item("Shirt", f"SKU-{n}", 1, 20.0),
                                f.line_item("Gift wrap", "WRAP", 1, 3.5, kind="giftwrap", cover=None, payload={})])
              for n in ("1", "2")]
    placed = _placed(shop, clock, make_adapter, *orders)
    assert set(placed) == {"1", "2"} and placed["1"]["sub_total_price"] == 20.0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == ["shopware: line items of type 'giftwrap' (e.g. 'Gift wrap' in order 1) are not sent and not in "
                      "sub_total_price; if they are goods, set this source's deposit_line_item_type = 'giftwrap'"]
    caplog.clear()
    _placed(shop, clock, lambda: make_adapter(deposit_line_item_type="giftwrap"))
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
