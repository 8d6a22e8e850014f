"""Sales-channel routing: ids as people copy them, channels left out, and ``check`` naming unknown ids."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from pydantic import ValidationError

from adapters.shopware.config import ShopwareConfig
from tests.shopware import factory as f
from tests.shopware.conftest import CLIENT_ID, SECRET, Clock, MakeAdapter, records
from tests.shopware.fake_server import FakeShopware

OUTLET = "0190c3d2e4f5a6b7c8d9e0f1a2b3c4d5"
DASHED = "98432DEF-39FC-4624-B332-13A56B8C944D"  # f.CHANNEL as the Administration's URL and SQL tools show it


@pytest.mark.parametrize("key", [f.CHANNEL.upper(), DASHED, f" {f.CHANNEL} "])
def test_a_sales_channel_id_routes_however_it_was_copied(key: str, shop: FakeShopware, clock: Clock,
                                                         make_adapter: MakeAdapter) -> None:
    """Was: only the exact lower-case hex matched; the orders silently went to the source's shop_slug."""
    shop.insert(f.order("1"), at=clock.now - timedelta(hours=1))
    (record,) = records(list(make_adapter(sales_channels={key: "karla-at"}).read("orders", None))).values()
    assert record.shop_slug == "karla-at"


def test_an_excluded_sales_channel_is_skipped_and_counted_not_dead_lettered(shop: FakeShopware, clock: Clock,
                                                                            make_adapter: MakeAdapter,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    shop.insert(f.order("1"), at=clock.now - timedelta(hours=1))
    shop.insert(f.order("2", channel=OUTLET), at=clock.now - timedelta(hours=1))
    caplog.set_level(logging.DEBUG)
    adapter = make_adapter(exclude_sales_channels=[OUTLET.upper()])
    pages = list(adapter.read("orders", None))
    assert set(records(pages)) == {"1"} and not [r for p in pages for r in p.rejected]
    assert adapter.skipped == {"sales channel excluded": 1}
    assert "shopware order 2 not sent: sales channel excluded" in caplog.text


def test_a_channel_cannot_be_routed_and_excluded() -> None:
    settings = {"type": "shopware", "base_url": "https://shop.example.com", "client_id": CLIENT_ID, "client_secret": SECRET}
    with pytest.raises(ValidationError, match="both routed and excluded"):
        ShopwareConfig.model_validate(settings | {"sales_channels": {DASHED: "at"}, "exclude_sales_channels": [f.CHANNEL]})


def test_check_names_the_configured_channels_and_warns_about_unknown_ids(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    shop.sales_channels[OUTLET] = f.sales_channel(OUTLET, "Outlet")
    typo = f.CHANNEL[:-1] + "e"
    adapter = make_adapter(sales_channels={DASHED: "karla-at", typo: "karla-ch", "storefront": "karla-de"},
                           exclude_sales_channels=[OUTLET])
    facts = adapter.check()
    assert f"sales channels: Storefront ({f.CHANNEL}) -> karla-at; Outlet ({OUTLET}) excluded" in facts
    assert [x for x in facts if x.startswith("warning")] == [
        f"warning: sales channel {typo} is configured but does not exist in Shopware",
        "warning: sales channel storefront is configured but does not exist in Shopware"]
