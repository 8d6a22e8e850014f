"""Auth, header traps, retries, the shop's page-size cap, check() and the settings model."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest
from pydantic import ValidationError

from adapters.shopware import ShopwareConfig
from connector.errors import ConfigError, Unavailable
from tests.shopware import factory as f
from tests.shopware.conftest import CLIENT_ID, SECRET, Clock, MakeAdapter, records, searches
from tests.shopware.fake_server import FakeShopware


def fill(shop: FakeShopware, clock: Clock, count: int) -> None:
    for n in range(count):
        shop.insert(f.order(str(n)), at=clock.now - timedelta(hours=1))


def test_one_token_serves_many_calls_and_is_renewed_before_it_expires(shop: FakeShopware, clock: Clock,
                                                                     make_adapter: MakeAdapter) -> None:
    fill(shop, clock, 25)
    adapter = make_adapter(page_size=5, window_hours=1000)
    assert len(records(list(adapter.read("orders", None)))) == 25 and len(searches(shop)) == 6
    adapter.check()
    assert shop.token_requests == 1
    clock.advance(seconds=479)  # under 80 % of the 600 s lifetime
    adapter.check()
    assert shop.token_requests == 1
    clock.advance(seconds=2)  # past 80 %: renewed although the old token is still valid for two minutes
    adapter.check()
    assert shop.token_requests == 2


def test_a_revoked_token_is_renewed_once_and_the_call_retried(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    fill(shop, clock, 3)
    adapter = make_adapter()
    adapter.check()
    shop.tokens.clear()  # revoked server-side
    assert set(records(list(adapter.read("orders", None)))) == {"0", "1", "2"}
    assert shop.token_requests == 2


def test_a_fresh_token_refused_is_a_config_error_naming_the_integration(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    shop.accept_tokens = False
    with pytest.raises(ConfigError, match=CLIENT_ID) as caught:
        adapter.check()
    assert SECRET not in str(caught.value) and shop.token_requests == 2  # one renewal, no retry loop


@pytest.mark.parametrize(("client_id", "secret", "hint"), [(CLIENT_ID, "wrong", "credentials refused"),
                                                           ("not-a-key", SECRET, "not an integration access key")])
def test_bad_credentials_fail_check_at_once(client_id: str, secret: str, hint: str, shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    with pytest.raises(ConfigError, match=hint) as caught:
        make_adapter(client_id=client_id, client_secret=secret).check()
    assert client_id in str(caught.value) and secret not in str(caught.value) and shop.token_requests == 1


def test_throttled_token_requests_wait_as_told(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    shop.fail("/api/oauth/token", (429, 10))
    assert make_adapter().check()
    assert shop.token_requests == 1 and max(clock.slept) >= 10


def test_limit_exceeded_shrinks_the_page_to_the_named_cap(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    shop.max_limit = 40
    fill(shop, clock, 90)
    adapter = make_adapter(page_size=100, window_hours=1000)
    assert len(records(list(adapter.read("orders", None)))) == 90
    assert [s["body"]["limit"] for s in searches(shop)] == [100, 40, 40, 40]
    assert adapter.page_size == 40


def test_limit_exceeded_without_a_named_cap_halves_the_page(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    shop.max_limit, shop.name_max_limit = 40, False
    fill(shop, clock, 30)
    adapter = make_adapter(page_size=100, window_hours=1000)
    assert len(records(list(adapter.read("orders", None)))) == 30
    assert [s["body"]["limit"] for s in searches(shop)] == [100, 50, 25, 25]


def test_server_errors_throttling_and_dropped_connections_are_retried(shop: FakeShopware, clock: Clock,
                                                                      make_adapter: MakeAdapter) -> None:
    fill(shop, clock, 2)
    shop.fail("/api/search/order", 503, (429, 7), "drop", 502)
    assert set(records(list(make_adapter(window_hours=1000).read("orders", None)))) == {"0", "1"}
    assert shop.failures == [] and len(searches(shop)) == 5 and max(clock.slept) >= 7


def test_a_shop_that_stays_down_ends_the_run_as_unavailable(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    shop.fail("/api/search/order", *[503] * 10)
    with pytest.raises(Unavailable, match="Shopware"):
        list(make_adapter(window_hours=1000).read("orders", None))
    assert len(searches(shop)) == 6  # the shared retry policy's attempts, then give up


def test_the_adapter_sends_the_json_headers(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    fill(shop, clock, 1)
    list(make_adapter().read("orders", None))
    for request in shop.requests:
        assert request["headers"]["accept"] == "application/json"
        assert request["headers"]["content-type"] == "application/json" or request["method"] == "GET"


def test_the_fake_springs_the_header_traps(shop: FakeShopware, clock: Clock) -> None:
    fill(shop, clock, 3)
    token = httpx.post(f"{shop.url}/api/oauth/token", data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                                           "client_secret": SECRET}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    narrow = {"limit": 1, "filter": [{"type": "equals", "field": "orderNumber", "value": "2"}]}
    lazy = httpx.post(f"{shop.url}/api/search/order", json=narrow, headers={**auth, "Accept": "*/*"})
    assert lazy.headers["content-type"] == "application/vnd.api+json" and lazy.json()["data"][0]["attributes"]["orderNumber"] == "2"
    assert httpx.post(f"{shop.url}/api/search/order", json=narrow, headers={**auth, "Accept": ""}).status_code == 415
    untyped = httpx.post(f"{shop.url}/api/search/order", content=httpx.Request("POST", "/", json=narrow).content,
                         headers={**auth, "Accept": "application/json", "Content-Type": "text/plain"})
    assert len(untyped.json()["data"]) == 3  # the criteria were silently ignored


def test_check_reports_version_and_newest_order(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    fill(shop, clock, 3)
    facts = make_adapter().check()
    assert facts[0] == f"Shopware 6.6.7.1 at {shop.url}"
    assert CLIENT_ID in facts[1] and "newest order 2" in facts[1]
    probe = searches(shop)[0]["body"]
    assert probe["limit"] == 1 and "deliveries" in probe["associations"]  # privileges for every association


def test_check_names_missing_privileges(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    shop.missing_privileges = ["order_delivery:read", "shipping_method:read"]
    with pytest.raises(ConfigError, match="missing privileges order_delivery:read, shipping_method:read"):
        make_adapter().check()


def test_secrets_stay_out_of_repr_and_logs(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter,
                                          caplog: pytest.LogCaptureFixture) -> None:
    fill(shop, clock, 2)
    caplog.set_level(logging.DEBUG)
    adapter = make_adapter()
    list(adapter.read("orders", None))
    for text in (repr(adapter), repr(adapter.config), str(adapter.config), repr(adapter.client), caplog.text):
        assert SECRET not in text
    assert CLIENT_ID in repr(adapter)


@pytest.mark.parametrize("where", ["/", "/api/search"])
def test_a_redirecting_base_url_is_named_with_the_url_to_use(where: str, shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    """A web server moving http to https or shop.example to www.shop.example answers every call with a 301.
    Was: "credentials refused ... check client_id and client_secret" (token), "did not answer JSON (301)" (data)."""
    shop.redirect_to, shop.redirect_from = "https://www.shop.example", where
    with pytest.raises(ConfigError) as caught:
        make_adapter().check()
    assert "base_url redirects to https://www.shop.example (301); use that" in str(caught.value)
    assert len(shop.requests) == (1 if where == "/" else 3)  # token; token, version, probe: no retries, not followed


def test_plain_http_is_refused_except_on_loopback() -> None:
    """The client secret goes out in the token request's body: never in cleartext over a network."""
    good = {"type": "shopware", "client_id": CLIENT_ID, "client_secret": SECRET}
    for url in ("http://127.0.0.1:8080", "http://localhost", "http://[::1]:8000/api"):
        assert ShopwareConfig.model_validate(good | {"base_url": url}).base_url == url.removesuffix("/api")
    for url in ("http://shop.example.com", "http://127.0.0.1.nip.io", "http://localhost.shop.example", "ftp://shop.example.com"):
        with pytest.raises(ValidationError, match=r"must start with https:// \(http:// only for 127.0.0.1"):
            ShopwareConfig.model_validate(good | {"base_url": url})


def test_settings_are_validated() -> None:
    good = {"type": "shopware", "base_url": "https://shop.example.com/api/", "client_id": CLIENT_ID, "client_secret": SECRET}
    assert ShopwareConfig.model_validate(good).base_url == "https://shop.example.com"
    for bad in ({"page_size": 501}, {"carriers": {"Kiala": "kiala"}}, {"base_url": "shop.example.com"}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            ShopwareConfig.model_validate(good | bad)
    fields = ShopwareConfig.model_fields
    assert all(fields[name].description for name in fields), "every setting documents itself"
    assert fields["order_states"].default == ["in_progress", "completed"]
    assert fields["delivery_states"].default == ["shipped", "shipped_partially"]


def test_the_shops_a_shopware_source_sends_to_include_its_sales_channels() -> None:
    config = ShopwareConfig.model_validate({"type": "shopware", "base_url": "https://shop.example.com", "client_id": CLIENT_ID,
                                            "client_secret": SECRET, "shop_slug": "main", "sales_channels": {"abc": "at-shop"}})
    assert config.shop_slugs() == {"main", "at-shop"}
