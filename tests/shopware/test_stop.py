"""A shutdown while a source is being retried: the pause ends at once and the run is "stopped", not "failed"."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import httpx

from adapters.shopware import ShopwareAdapter, ShopwareConfig
from connector.engine import SourceRuntime, sync_source
from state import Runs, open_state
from tests.shopware.conftest import CLIENT_ID, SECRET, Clock
from tests.shopware.fake_server import FakeShopware


class _StopOnOutage(httpx.HTTPTransport):
    """The shutdown arrives while the shop answers 503 (set before the retry pause begins: deterministic)."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.stop = stop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if response.status_code == 503:
            self.stop.set()
        return response


def test_a_stop_ends_the_retry_pause_and_the_run_is_stopped(tmp_path: Path, shop: FakeShopware, clock: Clock) -> None:
    stop = threading.Event()
    shop.fail("/api/search/order", *[(503, 30)] * 5)  # down, asking for 30 s between attempts
    config = ShopwareConfig.model_validate({"type": "shopware", "base_url": shop.url, "client_id": CLIENT_ID, "client_secret": SECRET})
    adapter = functools.partial(ShopwareAdapter, transport=_StopOnOutage(stop))  # real time.sleep: the pause is real
    rt = SourceRuntime("sw", adapter, config, "shop")  # type: ignore[arg-type]
    db = open_state(tmp_path / "state.db")
    counts = sync_source(db, rt, clock=clock, abort=stop)
    assert counts.read == 0
    assert len(shop.failures) == 4  # one 503 answered, no retry after the stop
    with db.read() as conn:
        assert Runs(conn).last("sw")["status"] == "stopped"  # type: ignore[index]
    db.close()
