"""Two sales channels with number ranges of their own can both issue 10000 (``adapters.shopware.numbers``).
Karla keeps one order per number and shop: sent to one Karla shop, the later replaced the earlier silently."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Rejected
from tests.conftest import SLUG, cli
from tests.shopware import factory as f
from tests.shopware.conftest import SECRET_ENV, Clock, MakeAdapter, cli_config, records
from tests.shopware.fake_server import FakeShopware

AT = "0190c3d2e4f5a6b7c8d9e0f1a2b3c4d5"


def two_ranges(shop: FakeShopware, at_pattern: str = "{n}") -> None:
    """Storefront on the global range, the Austrian channel on a range of its own."""
    shop.sales_channels[AT] = f.sales_channel(AT, "Storefront AT")
    shop.number_ranges.append(f.number_range("Orders AT", at_pattern, (AT,)))


def order(number: str, channel: str, email: str) -> dict[str, Any]:
    name = "Storefront AT" if channel == AT else "Storefront"
    return f.order(number, channel=channel, email=email, status="completed", salesChannel=f.sales_channel(channel, name))


def test_check_names_channels_of_one_karla_shop_that_share_a_number_pattern(shop: FakeShopware,
                                                                            make_adapter: MakeAdapter) -> None:
    two_ranges(shop)
    warned = [x for x in make_adapter().check() if x.startswith("warning")]
    assert warned == [
        "warning: sales channels sent to this source's Karla shop take order numbers from different number ranges with "
        f"the same pattern '{{n}}' (Storefront ({f.CHANNEL}) from 'Orders'; Storefront AT ({AT}) from 'Orders AT'): two "
        "of their orders can have the same number, and Karla keeps only one; send the channels to separate Karla shops "
        "(this source's sales_channels) or give the ranges distinct prefixes (Settings > Number ranges)"]


@pytest.mark.parametrize("setup", [
    {"pattern": "AT{n}"},  # distinct prefixes
    {"config": {"sales_channels": {AT: "karla-at"}}},  # separate Karla shops
    {"config": {"exclude_sales_channels": [AT]}},  # the Austrian orders are not sent
])
def test_channels_that_cannot_clash_in_karla_are_fine(setup: dict[str, Any], shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    two_ranges(shop, setup.get("pattern", "{n}"))
    facts = make_adapter(**setup.get("config", {})).check()
    assert "order number ranges: no two sales channels of one Karla shop share a pattern" in facts
    assert not [x for x in facts if x.startswith("warning")]


def test_check_without_number_range_read_says_so_and_passes(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    two_ranges(shop)
    shop.number_ranges_readable = False
    facts = make_adapter().check()  # no exception: orders still sync
    (said,) = [x for x in facts if "number ranges" in x]
    assert said.startswith("order number ranges not checked (grant number_range:read)")


def test_the_daemon_warns_once_a_process(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter,
                                         caplog: pytest.LogCaptureFixture) -> None:
    two_ranges(shop)
    for _ in range(2):  # an adapter per poll
        list(make_adapter().read("orders", None))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "'Orders AT'" in warned[0]


def test_a_second_order_with_a_number_read_for_the_same_karla_shop_is_a_dead_letter(
        shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    first = shop.insert(order("10000", f.CHANNEL, "de@example.com"), at=clock.now - timedelta(hours=2))
    second = shop.insert(order("10000", AT, "at@example.com"), at=clock.now - timedelta(hours=1))
    shop.update(first["id"], at=clock.now - timedelta(minutes=30))  # read again in a later window: no clash with itself
    pages = list(make_adapter(window_hours=1).read("orders", None))
    assert records(pages)["10000"].order.email_id == "de@example.com"  # type: ignore[union-attr]
    letters = [r for p in pages for r in p.rejected]  # the overlap of windows reads the second order twice
    assert letters and len({(r.location, r.reason) for r in letters}) == 1
    letter = letters[0]
    assert isinstance(letter, Rejected) and letter.key == "10000" and second["id"] in letter.location
    assert f"also Shopware order {first['id']} (sales channel Storefront ({f.CHANNEL}))" in letter.reason
    assert f"this one ({second['id']}, sales channel Storefront AT ({AT}))" in letter.reason


def test_the_same_number_for_two_karla_shops_is_no_clash(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    shop.insert(order("10000", f.CHANNEL, "de@example.com"), at=clock.now - timedelta(hours=2))
    shop.insert(order("10000", AT, "at@example.com"), at=clock.now - timedelta(hours=1))
    pages = list(make_adapter(sales_channels={AT: "karla-at"}).read("orders", None))
    assert sorted((r.shop_slug or "", r.key) for p in pages for r in p.records) == [("", "10000"), ("karla-at", "10000")]
    assert not [r for p in pages for r in p.rejected]


def test_through_the_cli_karla_keeps_the_first_and_the_second_is_a_letter(tmp_path: Path, sandbox: Any,
                                                                         live_shop: FakeShopware) -> None:
    ago = datetime.now(timezone.utc) - timedelta(hours=1)
    two_ranges(live_shop)
    live_shop.insert(order("10000", f.CHANNEL, "de@example.com"), at=ago)
    live_shop.insert(order("10000", AT, "at@example.com"), at=ago + timedelta(minutes=1))
    config, env = cli_config(tmp_path, sandbox.url, live_shop.url), SECRET_ENV
    checked = cli(config, "check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "'Orders AT'" in checked.stdout and "sales_channels" in checked.stdout
    synced = cli(config, "sync", env=env)
    assert synced.returncode == 1, synced.stdout + synced.stderr  # a dead letter
    assert sandbox.orders(SLUG)["10000"]["email_id"] == "de@example.com"  # was at@example.com: the German order gone
    letters = cli(config, "dlq", "list", env=env)
    assert "10000" in letters.stdout and "Storefront AT" in letters.stdout


def test_the_guard_remembers_a_bounded_number_of_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    """A nightly full sync of a large shop must not hold every order number it read: the oldest are forgotten."""
    from adapters.base import Record
    from adapters.shopware import numbers

    monkeypatch.setattr(numbers, "GUARDED", 2)
    guard = numbers.NumberGuard()
    row = lambda ident: {"id": ident, "salesChannelId": "c" * 32}  # noqa: E731
    for number, ident in (("1", "a"), ("2", "b"), ("3", "c")):
        assert isinstance(guard.admit(Record(key=number), row(ident)), Record)
    assert len(guard.seen) == 2
    assert isinstance(guard.admit(Record(key="3"), row("d")), Rejected)  # still remembered: a clash
    assert isinstance(guard.admit(Record(key="1"), row("e")), Record)  # forgotten: admitted (check's review covers it)
