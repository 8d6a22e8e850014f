"""The engine builds a new adapter every poll: what the source learns about the shop (its state names, that a
privilege is missing) and the warnings about it are kept for the process, not per adapter. They were asked
and said again every poll (a state search and a WARNING a minute at 60 s)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from adapters.shopware.states import STATES_TTL
from connector.engine import SourceRuntime, sync_source
from connector.errors import Unavailable
from state import StateDB
from tests.shopware import factory as f
from tests.shopware.conftest import Clock, MakeAdapter, engine_runtime
from tests.shopware.fake_server import FakeShopware

STATE_SEARCH = "/api/search/state-machine-state"


def _runtime(shop: FakeShopware, clock: Clock, **settings: Any) -> SourceRuntime:
    return engine_runtime(shop, clock, **settings)


def _polls(db: StateDB, shop: FakeShopware, clock: Clock, count: int, **settings: Any) -> None:
    for _ in range(count):
        sync_source(db, _runtime(shop, clock, **settings), clock=clock)
        clock.advance(minutes=1)


def _state_searches(shop: FakeShopware) -> int:
    return [r["path"] for r in shop.requests].count(STATE_SEARCH)


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_a_daemons_polls_ask_the_states_once_and_warn_once(shop: FakeShopware, clock: Clock, db: StateDB,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    items = [f.line_item("Shirt", "SKU-1", 1, 20.0), f.line_item("Gift wrap", "WRAP", 1, 3.5, kind="giftwrap", cover=None,
                                                                 payload={})]
    shop.history_readable = False
    for n in range(3):  # one order per poll, each with the plugin's line and a shipped delivery
        shop.insert(f.order(f"100{n}", status="completed", items=items,
                            deliveries=[f.delivery([(items[0], 1)], codes=[f"P{n}"], status="shipped")]),
                    at=clock.now - timedelta(minutes=5))
        _polls(db, shop, clock, 1, order_states=["paid", "completed"])
    assert _state_searches(shop) == 1  # was 3: one search per poll
    assert _warnings(caplog, "'paid' is not an order state") == 1  # was 3
    assert _warnings(caplog, "line items of type 'giftwrap'") == 1  # was 3: each poll's order had one
    assert _warnings(caplog, "cannot read the state machine history") == 1  # was 3


def test_without_state_machine_read_the_403_is_not_asked_every_poll(shop: FakeShopware, clock: Clock, db: StateDB) -> None:
    shop.states_readable = False
    _polls(db, shop, clock, 3)
    assert _state_searches(shop) == 1


def test_the_states_are_asked_again_after_an_hour_without_warning_again(shop: FakeShopware, clock: Clock, db: StateDB,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    _polls(db, shop, clock, 1, delivery_states=["shipped", "partially_shipped"])
    clock.advance(seconds=STATES_TTL)
    _polls(db, shop, clock, 2, delivery_states=["shipped", "partially_shipped"])
    assert _state_searches(shop) == 2  # a plugin's new state is seen within the hour
    assert _warnings(caplog, "'partially_shipped' is not a delivery state") == 1


def test_a_failed_lookup_is_asked_again_by_the_next_poll(shop: FakeShopware, clock: Clock, db: StateDB) -> None:
    shop.fail(STATE_SEARCH, *["drop"] * 10)  # more than the retries: the poll fails
    with pytest.raises(Unavailable):
        sync_source(db, _runtime(shop, clock), clock=clock)
    failed = _state_searches(shop)
    shop.failures.clear()
    _polls(db, shop, clock, 2)
    assert failed >= 1 and _state_searches(shop) == failed + 1  # the second poll asks, the third keeps its answer


def test_check_always_asks(shop: FakeShopware, clock: Clock, db: StateDB, make_adapter: MakeAdapter) -> None:
    _polls(db, shop, clock, 1)
    assert _state_searches(shop) == 1
    make_adapter().check()
    assert _state_searches(shop) == 2
