"""Orders Shopware cannot serve: one bad order, or a page too big to load, must not stop the source; an
outage must stay an outage (nothing skipped)."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import httpx
import pytest

from adapters.base import Page
from adapters.shopware.adapter import unserved_answer
from connector.errors import Aborted, RetryableError, Unavailable
from tests.shopware import factory as f
from tests.shopware.conftest import Clock, MakeAdapter, records, searches
from tests.shopware.fake_server import FakeShopware


def fill(shop: FakeShopware, clock: Clock, count: int) -> dict[str, str]:
    """``count`` orders numbered from 1; order number -> id."""
    return {str(n): shop.insert(f.order(str(n)), at=clock.now - timedelta(hours=2))["id"] for n in range(1, count + 1)}


def limits(shop: FakeShopware) -> list[int]:
    return [r["body"]["limit"] for r in searches(shop) if "associations" in r["body"]]


def test_an_order_shopware_cannot_serve_is_a_dead_letter_and_later_orders_sync(shop: FakeShopware, clock: Clock,
                                                                              make_adapter: MakeAdapter) -> None:
    """Was: the same page retried unchanged on every poll, "answered 500 on /search/order", 0 later orders."""
    ids = fill(shop, clock, 30)
    shop.unservable[ids["5"]] = "Malformed UTF-8 characters, possibly incorrectly encoded"
    pages = list(make_adapter(page_size=10).read("orders", None))
    assert set(records(pages)) == {str(n) for n in range(1, 31)} - {"5"}
    (rejected,) = [(r, p) for p in pages for r in p.rejected]
    letter, page = rejected
    assert letter.key == "5" and ids["5"] in letter.location and "Malformed UTF-8" in letter.reason
    assert json.loads(page.cursor or "")["scan"]["after"] > shop.orders[ids["5"]]["autoIncrement"]  # its page passes it
    assert limits(shop)[-3:] == [10, 10, 10]  # the configured size again once past it


def test_a_page_too_big_to_load_is_halved_until_it_loads(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    fill(shop, clock, 60)
    shop.max_rows = 20  # PHP's memory limit
    adapter = make_adapter(page_size=100)
    pages = list(adapter.read("orders", None))
    assert len(records(pages)) == 60 and not [r for p in pages for r in p.rejected]
    assert [size for size, _ in itertools.groupby(limits(shop))] == [100, 50, 25, 12]  # kept for the rest of the poll
    shop.requests.clear()
    clock.advance(minutes=5)
    list(adapter.read("orders", pages[-1].cursor))
    assert limits(shop)[0] == 100  # each poll starts at the configured size


def test_an_outage_stays_an_outage_and_skips_nothing(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    fill(shop, clock, 5)
    adapter = make_adapter(page_size=10)
    adapter.client.ensure_token()
    shop.fail("/api/search/order", *[503] * 50)
    shop.fail("/api/search-ids/order", *[503] * 50)
    pages: list[Page] = []
    with pytest.raises(Unavailable, match="answered 503 on /search/order"):
        pages.extend(adapter.read("orders", None))
    probes = [r for r in shop.requests if r["path"] == "/api/search-ids/order"]
    assert not pages and limits(shop) == [10] * 6 and not probes  # the client's retries; a 503: no probe, no halving


def test_a_shop_that_fails_every_order_is_broken_not_full_of_bad_orders(shop: FakeShopware, clock: Clock,
                                                                       make_adapter: MakeAdapter) -> None:
    """search-ids works but no order loads (a plugin failing on every order): no dead letters, Unavailable."""
    for ident in fill(shop, clock, 20).values():
        shop.unservable[ident] = "Call to a member function getId() on null"
    pages: list[Page] = []
    with pytest.raises(Unavailable, match="getId"):
        pages.extend(make_adapter(page_size=4).read("orders", None))
    assert not pages


def test_only_server_errors_and_timeouts_count_as_a_page_shopware_cannot_serve() -> None:
    def after(cause: Exception, kind: type[Unavailable] = Unavailable) -> Unavailable:
        try:
            raise kind("unavailable after retries") from cause
        except Unavailable as exc:
            return exc

    request = httpx.Request("POST", "https://shop.example/api/search/order")
    assert unserved_answer(after(RetryableError("500", status=500)))
    assert unserved_answer(after(httpx.ReadTimeout("slow", request=request)))
    assert not unserved_answer(after(RetryableError("429", status=429)))
    assert not unserved_answer(after(RetryableError("503", status=503)))  # a proxy's word for an overloaded shop
    assert not unserved_answer(after(httpx.ConnectError("refused", request=request)))
    assert not unserved_answer(after(RetryableError("500", status=500), Aborted))


def test_a_burst_of_503s_is_an_outage_and_skips_no_order(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    """A proxy's 503 while search-ids still answers (an overloaded shop: the light query loads, the heavy one
    does not) dead-lettered a good order, which later polls then skipped (found by review)."""
    fill(shop, clock, 10)
    adapter = make_adapter(page_size=10)
    adapter.client.ensure_token()
    shop.fail("/api/search/order", *[503] * 6)  # as long as the client retries
    with pytest.raises(Unavailable, match="503"):
        list(adapter.read("orders", None))
    clock.advance(minutes=5)
    pages = list(make_adapter(page_size=10).read("orders", None))
    assert set(records(pages)) == {str(n) for n in range(1, 11)} and not [r for p in pages for r in p.rejected]


def test_a_single_order_that_only_times_out_is_not_skipped() -> None:
    from adapters.shopware.unserved import _bad_order

    request = httpx.Request("POST", "https://shop.example/api/search/order")
    try:
        raise Unavailable("unavailable after retries") from httpx.ReadTimeout("slow", request=request)
    except Unavailable as exc:
        assert unserved_answer(exc) and not _bad_order(exc)  # a smaller page is worth a try; a skip is not
