"""The adapter contract kit (``adapters.testing``) run against the fake shop."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.base import AdapterContext
from adapters.shopware import ShopwareAdapter
from adapters.testing import AdapterContract
from tests.shopware import factory as f
from tests.shopware.conftest import SECRET, Clock, MakeAdapter
from tests.shopware.fake_server import FakeShopware


class TestShopwareContract(AdapterContract):
    secrets = [SECRET]
    expected = {"3": {"order": {"order_number": "3", "address": {"zip_code": "10119"}},
                      "trackings": [{"tracking_number": "T3", "carrier_reference": "dhl"}]}}

    @pytest.fixture(autouse=True)
    def _shop(self, shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
        self.make = make_adapter
        for n in range(11):
            items = [f.line_item("Shirt", f"SKU-{n}", 1, 20.0)]
            shipped = f.delivery([(items[0], 1)], codes=[f"T{n}"], status="shipped", ship_to=f.address())
            shop.insert(f.order(str(n), items=items, deliveries=[shipped]), at=clock.now - timedelta(days=n % 4, hours=1))

    def make_adapter(self, context: AdapterContext) -> ShopwareAdapter:
        return self.make(page_size=2, window_hours=30)

    def make_bad_adapter(self, context: AdapterContext) -> ShopwareAdapter:
        return self.make(client_secret="not-the-secret")
