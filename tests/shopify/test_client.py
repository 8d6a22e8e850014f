"""The HTTP side: cost pacing, THROTTLED, 429, 5xx, tokens, status codes, API version, secrets."""

from __future__ import annotations

import logging

import pytest

from connector.errors import ConfigError
from tests.shopify.conftest import MakeAdapter, keys, read
from tests.shopify.factories import fulfillment, order
from tests.shopify.fake_server import FakeShopify, Scripted
from tests.shopify.store import FakeClock


def _fill(shop: FakeShopify, count: int) -> None:
    for n in range(count):
        data = order(n, updated=f"2026-11-20T{8 + n // 60:02d}:{n % 60:02d}:00Z")
        data["fulfillments"] = [fulfillment(data, 10_000 + n, [f"TRK{n}"])]
        shop.add_order(data)


def test_pacing_keeps_throttled_at_zero_on_a_100_points_budget(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    _fill(shop, 200)
    pages, _ = read(make_adapter(page_size=250))
    assert len(keys(pages)) == 200
    answered = [r for r in shop.requests if "actual" in r]
    assert len(answered) >= 19 and shop.throttled == 0
    waited, spent = sum(clock.slept), sum(r["actual"] for r in answered)
    assert waited > 0, "the bucket was the limit, so the client must have waited"
    assert waited <= spent / 100 + 1, "it waits only as long as the points it used take to restore"


def test_an_empty_bucket_costs_one_throttled_then_a_wait_for_the_restore_rate(
    shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock
) -> None:
    _fill(shop, 30)
    shop.bucket.available = 0.0
    # without bulk there is no first-poll ``ordersCount``: the page is the request that meets the empty bucket
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0, use_bulk_for_full_sync=False))
    assert len(keys(pages)) == 30
    assert shop.throttled == 1
    assert max(clock.slept) >= 9.5  # 981 points at 100 points/s, not a hot retry


def test_429_honours_retry_after(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    _fill(shop, 3)
    shop.script = [Scripted(429, {"errors": "Exceeded 2 calls per second for api client."}, {"Retry-After": "7.5"})]
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0))
    assert len(keys(pages)) == 3
    assert clock.slept and max(clock.slept) >= 7.5


def test_server_errors_back_off_and_retry(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    _fill(shop, 3)
    shop.script = [Scripted(502), Scripted(503)]
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0))
    assert len(keys(pages)) == 3 and len([r for r in shop.requests if r["status"] >= 500]) == 2


@pytest.mark.parametrize(("status", "meaning"), [(402, "frozen"), (403, "scope"), (423, "locked"), (404, "shop_domain")])
def test_shop_state_errors_are_config_errors_without_retries(
    shop: FakeShopify, make_adapter: MakeAdapter, status: int, meaning: str
) -> None:
    shop.script = [Scripted(status)]
    with pytest.raises(ConfigError, match=meaning):
        read(make_adapter())
    assert len(shop.requests) == 1


def test_client_credentials_token_is_renewed_once_on_401(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    _fill(shop, 3)
    shop.add_client("karla-app", "s3cret-client-value")
    adapter = make_adapter(client_id="karla-app", client_secret="s3cret-client-value", recheck_unfulfilled_days=0,
                           lookback_seconds=0)  # exactly the new order: no overlap re-read
    first, cursor = read(adapter)
    assert len(keys(first)) == 3 and shop.token_grants == 1 and shop.unauthorized == 0
    shop.revoke_tokens()
    shop.add_order(order(99, updated="2026-11-20T11:00:00Z"))
    second, _ = read(adapter, cursor)
    assert keys(second) == ["1099"]
    assert shop.unauthorized == 1 and shop.token_grants == 2


def test_client_credentials_token_is_renewed_before_it_expires(shop: FakeShopify, make_adapter: MakeAdapter, clock: FakeClock) -> None:
    shop.add_client("karla-app", "s3cret-client-value", lifetime=600)
    adapter = make_adapter(client_id="karla-app", client_secret="s3cret-client-value", recheck_unfulfilled_days=0)
    read(adapter)
    clock.advance(560)
    read(adapter)
    assert shop.token_grants == 2 and shop.unauthorized == 0


def test_refused_credentials_name_the_credential(shop: FakeShopify, make_adapter: MakeAdapter) -> None:
    shop.add_client("karla-app", "right")
    with pytest.raises(ConfigError, match="client_secret"):
        make_adapter(client_id="karla-app", client_secret="wrong").check()
    with pytest.raises(ConfigError, match="access_token"):
        make_adapter(access_token="shpat_wrong").check()
    shop.script = [Scripted(401, {"errors": "[API] Invalid API key"}), Scripted(401, {"errors": "[API] Invalid API key"})]
    with pytest.raises(ConfigError, match="client_id/client_secret"):
        make_adapter(client_id="karla-app", client_secret="right").check()


def test_page_size_shrinks_when_shopify_prices_a_query_higher(shop: FakeShopify, make_adapter: MakeAdapter,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    _fill(shop, 12)
    shop.max_query_cost = 500
    pages, _ = read(make_adapter(recheck_unfulfilled_days=0))
    assert len(keys(pages)) == 12
    assert {r["variables"]["first"] for r in shop.graphql_requests("Orders")} == {9, 4}
    assert any("asking for 4 orders per request" in r.getMessage() for r in caplog.records)


def test_a_bucket_smaller_than_a_page_shrinks_the_page(clock: FakeClock, make_adapter: MakeAdapter) -> None:
    with FakeShopify(clock, maximum=400, restore_rate=20) as small:
        _fill(small, 12)
        adapter = make_adapter(api_base_url=small.url, access_token=small.token, recheck_unfulfilled_days=0)
        pages, _ = read(adapter)
        assert len(keys(pages)) == 12 and {r["variables"]["first"] for r in small.graphql_requests("Orders")} >= {2}


def test_a_different_api_version_is_warned_about_once(shop: FakeShopify, make_adapter: MakeAdapter,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    _fill(shop, 3)
    shop.served_version = "2026-04"  # 2025-01 is no longer supported: Shopify falls forward
    read(make_adapter(api_version="2025-01"))
    warnings = [r.getMessage() for r in caplog.records if "answers with API version 2026-04" in r.getMessage()]
    assert len(warnings) == 1 and "configured 2025-01" in warnings[0]


def test_secrets_never_reach_logs_or_repr(shop: FakeShopify, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture) -> None:
    _fill(shop, 2)
    shop.add_client("karla-app", "s3cret-client-value")
    caplog.set_level(logging.DEBUG)
    adapter = make_adapter(client_id="karla-app", client_secret="s3cret-client-value")
    read(adapter)
    issued = [t for t in shop.tokens if t.startswith("shpat_cc_")]
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(adapter) + repr(adapter.config) + str(adapter.config)
    assert issued and "X-Shopify-Access-Token" in text  # the header is logged, redacted
    for secret in (*issued, "s3cret-client-value"):
        assert secret not in text
