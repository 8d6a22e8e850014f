"""A sales channel listed in sales_channels with the Karla shop the unlisted channels go to anyway shares that
shop with them. The number range check and the guard grouped it apart (its slug vs. "unlisted"), so ``check``
said nothing and the second order 10000 silently replaced the first in Karla (``adapters.shopware.numbers``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from adapters.base import AdapterContext
from adapters.shopware.adapter import ShopwareAdapter
from adapters.shopware.config import ShopwareConfig
from tests.conftest import SLUG, cli
from tests.shopware import factory as f
from tests.shopware.conftest import CLIENT_ID, SECRET, SECRET_ENV, Clock, MakeAdapter, cli_config
from tests.shopware.fake_server import FakeShopware
from tests.shopware.test_number_ranges import AT, order, two_ranges


def _clash(shop: FakeShopware, clock: Clock) -> None:
    two_ranges(shop)
    shop.insert(order("10000", f.CHANNEL, "de@example.com"), at=clock.now - timedelta(hours=2))
    shop.insert(order("10000", AT, "at@example.com"), at=clock.now - timedelta(hours=1))


def _said_and_refused(adapter: ShopwareAdapter) -> None:
    warned = [x for x in adapter.check() if x.startswith("warning")]
    assert len(warned) == 1 and f"sent to Karla shop '{SLUG}'" in warned[0] and "'Orders AT'" in warned[0]  # was none
    pages = list(adapter.read("orders", None))
    assert [r.order.email_id for p in pages for r in p.records] == ["de@example.com"]  # type: ignore[union-attr]
    assert [(r.key, "Storefront AT" in r.reason) for p in pages for r in p.rejected] == [("10000", True)]  # was none


def test_a_channel_listed_with_the_sources_own_shop(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    _clash(shop, clock)
    _said_and_refused(make_adapter(shop_slug=SLUG, sales_channels={AT: SLUG}))


@dataclass(frozen=True, slots=True)
class _Lent(AdapterContext):
    shop_slug: str | None = None  # [karla].shop_slug, as the engine would lend it (see the adapter's default_slug)


def test_a_channel_listed_with_the_karla_shop_lent_by_the_engine(shop: FakeShopware, clock: Clock) -> None:
    _clash(shop, clock)
    config = ShopwareConfig.model_validate({"type": "shopware", "base_url": shop.url, "client_id": CLIENT_ID,
                                            "client_secret": SECRET, "sales_channels": {AT: SLUG}})
    adapter = ShopwareAdapter("sw", config, _Lent(source="sw", clock=clock, shop_slug=SLUG), sleep=clock.sleep,
                              monotonic=clock.monotonic)
    try:
        _said_and_refused(adapter)
    finally:
        adapter.close()


def test_a_channel_listed_with_another_shop_is_still_no_clash(shop: FakeShopware, clock: Clock,
                                                              make_adapter: MakeAdapter) -> None:
    _clash(shop, clock)
    adapter = make_adapter(shop_slug=SLUG, sales_channels={AT: "karla-at"})
    assert not [x for x in adapter.check() if x.startswith("warning")]
    pages = list(adapter.read("orders", None))
    assert len([r for p in pages for r in p.records]) == 2 and not [r for p in pages for r in p.rejected]


def _cli_clash(tmp_path: Path, sandbox: Any, shop: FakeShopware, source_lines: str) -> tuple[Any, Any]:
    ago = datetime.now(timezone.utc) - timedelta(hours=1)
    two_ranges(shop)
    shop.insert(order("10000", f.CHANNEL, "de@example.com"), at=ago)
    shop.insert(order("10000", AT, "at@example.com"), at=ago + timedelta(minutes=1))
    config = cli_config(tmp_path, sandbox.url, shop.url)
    config.write_text(config.read_text() + source_lines + f'[sources.sw.sales_channels]\n"{AT}" = "{SLUG}"\n')
    return cli(config, "check", env=SECRET_ENV), cli(config, "sync", env=SECRET_ENV)


def test_through_the_cli_with_the_sources_shop_slug(tmp_path: Path, sandbox: Any, live_shop: FakeShopware) -> None:
    checked, synced = _cli_clash(tmp_path, sandbox, live_shop, f'shop_slug = "{SLUG}"\n')
    assert checked.returncode == 0 and "'Orders AT'" in checked.stdout, checked.stdout + checked.stderr  # was no warning
    assert synced.returncode == 1, synced.stdout + synced.stderr  # a dead letter; was rc 0
    assert sandbox.orders(SLUG)["10000"]["email_id"] == "de@example.com"  # was at@example.com: the German order gone


def test_through_the_cli_with_only_karlas_shop_slug(tmp_path: Path, sandbox: Any, live_shop: FakeShopware) -> None:
    checked, synced = _cli_clash(tmp_path, sandbox, live_shop, "")
    assert "'Orders AT'" in checked.stdout, checked.stdout + checked.stderr
    assert synced.returncode == 1 and sandbox.orders(SLUG)["10000"]["email_id"] == "de@example.com"
