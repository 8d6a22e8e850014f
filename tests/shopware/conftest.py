"""Fixtures: one clock shared by the adapter and the fake (sleeping advances it, instantly) and a started
fake Shopware on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from adapters.base import AdapterContext, Page, Record
from adapters.shopware import ShopwareAdapter, ShopwareConfig, memory
from connector.engine import SourceRuntime
from state import StateDB, open_state
from tests.shopware.fake_server import FakeShopware

CLIENT_ID, SECRET = "SWIAFAKEINTEGRATION", "fake-secret-7d1e"
SECRET_ENV = {"KARLA_CONNECTOR_SOURCES__SW__CLIENT_SECRET": SECRET}  # the client secret as a merchant sets it


def cli_config(tmp_path: Path, karla_url: str, shop_url: str) -> Path:
    """A config file for the CLI: Karla (the sandbox) and one Shopware source ``sw`` (its secret in ``SECRET_ENV``)."""
    from tests.conftest import API_KEY, SLUG

    config = tmp_path / "karla-connector.toml"
    config.write_text(
        f'[karla]\nbase_url = "{karla_url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n'
        f'[state]\npath = "{tmp_path / "state.db"}"\n'
        f'[sources.sw]\ntype = "shopware"\nbase_url = "{shop_url}"\nclient_id = "{CLIENT_ID}"\n', encoding="utf-8")
    return config


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.now.timestamp()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds=seconds)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def shop(clock: Clock) -> Iterator[FakeShopware]:
    fake = FakeShopware(clock).start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _fresh_process_memory() -> Iterator[None]:
    """What the source keeps per process (the shop's states, warnings said once) starts empty in every test, as
    in a fresh daemon: the fakes of different tests share an integration id and may reuse a port."""
    memory.forget()
    yield
    memory.forget()


MakeAdapter = Callable[..., ShopwareAdapter]


@pytest.fixture()
def make_adapter(shop: FakeShopware, clock: Clock) -> Iterator[MakeAdapter]:
    made: list[ShopwareAdapter] = []

    def make(full_sync: bool = False, **config: Any) -> ShopwareAdapter:
        options = {"type": "shopware", "base_url": shop.url, "client_id": CLIENT_ID, "client_secret": SECRET,
                   "lag_seconds": 60, "overlap_seconds": 300, "initial_days": 30, **config}
        context = AdapterContext(source="sw", clock=clock, full_sync=full_sync)
        adapter = ShopwareAdapter("sw", ShopwareConfig.model_validate(options), context, sleep=clock.sleep,
                                  monotonic=clock.monotonic)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


@pytest.fixture()
def live_shop() -> Iterator[FakeShopware]:
    fake = FakeShopware(lambda: datetime.now(timezone.utc)).start()  # for CLI subprocesses: they cannot share a fake clock
    yield fake
    fake.stop()


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[StateDB]:
    state = open_state(tmp_path / "state.db")
    yield state
    state.close()


def engine_runtime(shop: FakeShopware, clock: Clock, slug: str = "test-shop", **settings: Any) -> SourceRuntime:
    """The source as the engine runs it: a new adapter per ``sync_source``, on the fake shop and its clock."""
    class ClockedShopware(ShopwareAdapter):  # the engine builds adapters with (name, config, context) only
        def __init__(self, name: str, config: ShopwareConfig, context: AdapterContext) -> None:
            super().__init__(name, config, context, sleep=clock.sleep, monotonic=clock.monotonic)

    config = ShopwareConfig.model_validate({"type": "shopware", "base_url": shop.url, "client_id": CLIENT_ID,
                                            "client_secret": SECRET, "lag_seconds": 60, **settings})
    return SourceRuntime("sw", ClockedShopware, config, default_slug=slug)


def records(pages: list[Page]) -> dict[str, Record]:
    """The last record per order key (later pages win, as in the outbox)."""
    return {r.key: r for p in pages for r in p.records}


def searches(shop: FakeShopware) -> list[dict[str, Any]]:
    return [r for r in shop.requests if r["path"] == "/api/search/order"]
