"""A 401 or 403 that Shopware did not write (HTTP basic auth on a staging shop, a WAF or CDN page) names what is
in front of /api instead of blaming the integration's credentials or privileges; Shopware's own JSON errors keep
their wording. The fake answers with such a page (``front``) on a real loopback server."""

from __future__ import annotations

import pytest

from connector.errors import ConfigError
from tests.shopware.conftest import MakeAdapter
from tests.shopware.fake_server import FakeShopware

STAGING = (401, {"WWW-Authenticate": 'Basic realm="Staging"', "Server": "nginx"}, "<html><h1>401 Authorization Required</h1></html>")
WAF = (403, {"Server": "cloudflare"}, "<html><title>Attention Required! | Cloudflare</title></html>")


def test_basic_auth_in_front_of_the_shop_is_not_called_bad_credentials(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    shop.front = STAGING
    with pytest.raises(ConfigError) as caught:
        make_adapter().check()
    message = str(caught.value)
    assert "something in front of Shopware's /api (HTTP basic auth, Basic realm=\"Staging\"; Server: nginx)" in message
    assert "401 Unauthorized, not Shopware: let /api through for this client" in message
    assert "client_secret" not in message  # was: "credentials refused (401 Unauthorized); check client_id and client_secret"


def test_a_waf_page_on_data_calls_is_not_called_missing_privileges(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    shop.front, shop.front_from = WAF, "/api/search/"
    with pytest.raises(ConfigError) as caught:
        list(make_adapter().read("orders", None))
    message = str(caught.value)
    assert "(a firewall/WAF, CDN or proxy; Server: cloudflare) refused the request with 403 Forbidden" in message
    assert "read rights" not in message  # was: "access denied (Forbidden); give the integration read rights on orders"
    assert shop.token_requests == 1


def test_a_basic_auth_401_on_data_calls_asks_for_no_second_token(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    shop.front, shop.front_from = STAGING, "/api/search/"
    with pytest.raises(ConfigError, match="HTTP basic auth"):
        list(make_adapter().read("orders", None))
    assert shop.token_requests == 1  # was: a second token, then "is the integration still active?"


def test_shopwares_own_refusals_keep_their_wording(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    with pytest.raises(ConfigError, match="credentials refused .*check client_id and client_secret"):
        make_adapter(client_secret="wrong").check()
    shop.missing_privileges = ["order:read"]
    with pytest.raises(ConfigError, match="missing privileges order:read; give the integration read rights on orders"):
        make_adapter().check()
