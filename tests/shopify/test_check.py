"""``check()`` and the settings: scopes, shop facts, and configuration mistakes caught early."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from adapters.shopify import ShopifyConfig
from connector.errors import ConfigError
from tests.shopify.conftest import MakeAdapter, read
from tests.shopify.fake_server import FakeShopify


def test_check_reports_shop_version_and_scopes(make_adapter: MakeAdapter) -> None:
    facts = make_adapter().check()
    assert facts == [
        "shop Karla Testladen (karla-test.myshopify.com, plan Basic)",
        "Admin API 2026-04",
        "scopes: read_all_orders, read_fulfillments, read_merchant_managed_fulfillment_orders, read_orders",
    ]


def test_check_warns_about_missing_history_and_fulfillment_scopes(
    shop: FakeShopify, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    shop.scopes = ["read_orders"]
    facts = make_adapter().check()
    assert any("read_all_orders" in f and "60 days" in f for f in facts)
    assert any("read_fulfillments" in f for f in facts)
    assert any("read_merchant_managed_fulfillment_orders" in f and "pickups" in f for f in facts)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3


def test_only_the_merchant_managed_scope_shows_local_pickups(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    # The assigned and third-party scopes show fulfillment services' orders, not the shop's own locations'.
    shop.scopes = ["read_orders", "read_all_orders", "read_fulfillments", "read_third_party_fulfillment_orders"]
    assert any("read_merchant_managed_fulfillment_orders" in f for f in make_adapter().check())


def test_check_refuses_an_app_without_read_orders(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    shop.scopes = ["read_products"]
    with pytest.raises(ConfigError, match="read_orders"):
        make_adapter().check()


def test_history_beyond_sixty_days_without_read_all_orders_is_warned(
    shop: FakeShopify, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    shop.scopes = ["read_orders", "read_fulfillments"]
    read(make_adapter(full_sync_since="2025-01-01", recheck_unfulfilled_days=0))
    assert any("read_all_orders" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def _config(**values: object) -> ShopifyConfig:
    return ShopifyConfig(**{"type": "shopify", "shop_domain": "laden.myshopify.com", "access_token": "shpat_x", **values})


def test_config_normalises_the_domain_and_hides_secrets() -> None:
    config = _config(shop_domain="https://Laden.myshopify.com/", client_id="app", client_secret="very-secret")
    assert config.shop_domain == "laden.myshopify.com" and config.base_url == "https://laden.myshopify.com"
    assert "very-secret" not in repr(config) and "shpat_x" not in repr(config)


@pytest.mark.parametrize(("values", "message"), [
    ({"shop_domain": "laden.example.com"}, "myshopify.com"),
    ({"access_token": None}, "client_id and client_secret"),
    ({"client_id": "app"}, "go together"),
    ({"page_size": 251}, "250"),
    ({"api_version": "2025-02"}, "quarterly"),
    ({"carriers": {"Kiezkurier": "kiez"}}, "not Karla carrier references: kiez"),
    ({"unknown_key": 1}, "Extra inputs"),
])
def test_config_mistakes_are_caught(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _config(**values)
