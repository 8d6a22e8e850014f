"""Fixtures: a fake clock shared by everything, a running fake shop, and adapters wired to both."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import AdapterContext, Page, Record
from adapters.shopify import ShopifyAdapter, ShopifyConfig
from connector.engine import SourceRuntime
from state import StateDB, open_state
from tests.shopify.fake_server import FakeShopify
from tests.shopify.schema import SCHEMA_FILE
from tests.shopify.store import FakeClock

if not SCHEMA_FILE.exists():  # vendored in tests/shopify/data; never skip the Shopify suite silently
    raise RuntimeError(f"Shopify schema missing: {SCHEMA_FILE}")

MakeAdapter = Callable[..., ShopifyAdapter]


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def shop(clock: FakeClock) -> Iterator[FakeShopify]:
    with FakeShopify(clock) as fake:
        yield fake


@pytest.fixture()
def make_adapter(shop: FakeShopify, clock: FakeClock) -> Iterator[MakeAdapter]:
    made: list[ShopifyAdapter] = []

    def make(*, full_sync: bool = False, log: logging.Logger | None = None, **settings: Any) -> ShopifyAdapter:
        values = {"type": "shopify", "shop_domain": shop.domain, "api_base_url": shop.url, "lag_seconds": 60, **settings}
        if "client_id" not in settings and "access_token" not in settings:
            values["access_token"] = shop.token
        context = AdapterContext(source="shop", clock=clock.now, log=log or logging.getLogger("adapters.shopify.test"),
                                 full_sync=full_sync)
        adapter = ShopifyAdapter("shop", ShopifyConfig(**values), context, sleep=clock.sleep, monotonic=clock.monotonic)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def read(adapter: ShopifyAdapter, cursor: str | None = None) -> tuple[list[Page], str | None]:
    """All pages from ``cursor`` and the cursor the engine would hold afterwards."""
    pages = list(adapter.read("orders", cursor))
    for page in pages:
        cursor = page.cursor if page.cursor is not None else cursor
    return pages, cursor


def records(pages: list[Page]) -> list[Record]:
    return [r for p in pages for r in p.records]


def keys(pages: list[Page]) -> list[str]:
    return [r.key for r in records(pages)]


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[StateDB]:
    state = open_state(tmp_path / "state.db")
    yield state
    state.close()


def engine_runtime(shop: FakeShopify, clock: FakeClock, **settings: Any) -> SourceRuntime:
    """The source as the engine runs it, on the fake shop and its clock."""
    class ClockedShopify(ShopifyAdapter):  # the engine builds adapters with (name, config, context) only
        def __init__(self, name: str, config: ShopifyConfig, context: AdapterContext) -> None:
            super().__init__(name, config, context, sleep=clock.sleep, monotonic=clock.monotonic)

    config = ShopifyConfig(type="shopify", shop_domain=shop.domain, api_base_url=shop.url, access_token=shop.token, **settings)
    return SourceRuntime("shop", ClockedShopify, config, default_slug="test-shop")


@pytest.fixture(autouse=True)
def _fresh_process_memory() -> Iterator[None]:
    """What the adapter keeps per process (granted tokens, warnings said once) starts empty in every test, as in
    a fresh daemon: the fakes of different tests share a shop domain and may reuse a port."""
    from adapters.shopify import auth, client, untracked, watch

    auth.forget_grants()
    untracked.forget_told()
    client._ANNOUNCED.clear()
    client._FELL_FORWARD.clear()
    watch._OVERFLOWING.clear()
    yield
