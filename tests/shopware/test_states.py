"""``order_states`` and ``delivery_states`` against the shop's state machines: a wrong name selected nothing and
said nothing (an Administration label, a payment state, a reversed name). ``check`` refuses it with the closest
name, the daemon warns (once a process: test_said_once), a name differing only in spaces or hyphens is read as
the shop's, and each poll says at INFO how many orders it read and did not send."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from connector.errors import ConfigError
from tests.conftest import API_KEY, SLUG, cli
from tests.shopware import factory as f
from tests.shopware.conftest import CLIENT_ID, SECRET, Clock, MakeAdapter, records
from tests.shopware.fake_server import FakeShopware


def _shipped_order(shop: FakeShopware, clock: Clock, number: str = "1001", state: str = "shipped_partially") -> None:
    items = [f.line_item("Shirt", "SKU-1", 1, 20.0)]
    shop.insert(f.order(number, items=items, deliveries=[f.delivery([(items[0], 1)], codes=["P1"], status=state)]),
                at=clock.now - timedelta(hours=1))


@pytest.mark.parametrize(("option", "names", "bad", "said"), [
    ("order_states", ["paid", "completed"], "'paid' is not an order state", "('paid' is a payment state"),
    ("order_states", ["shipped"], "'shipped' is not an order state", "is a delivery state: list it in delivery_states"),
    ("delivery_states", ["shipped", "partially_shipped"], "'partially_shipped' is not a delivery state",
     "did you mean 'shipped_partially'?"),
    ("order_states", ["in_progres"], "'in_progres' is not an order state", "did you mean 'in_progress'?"),
])
def test_check_refuses_a_state_the_shop_does_not_have(option: str, names: list[str], bad: str, said: str,
                                                      make_adapter: MakeAdapter) -> None:
    with pytest.raises(ConfigError) as caught:
        make_adapter(**{option: names}).check()
    message = str(caught.value)
    assert f"{option}: {bad} in this shop" in message and said in message and "; valid: " in message


def test_check_names_the_technical_name_of_a_label(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    """The Administration shows labels in the user's language; Shopware filters on the technical name."""
    for row in shop.states:
        if row["technicalName"] == "in_progress" and row["stateMachine"]["technicalName"] == "order.state":
            row["translated"] = {"name": "In Bearbeitung"}
    with pytest.raises(ConfigError, match="did you mean 'in_progress' \\(the technical name of 'In Bearbeitung'\\)"):
        make_adapter(order_states=["In Bearbeitung"]).check()


def test_a_name_differing_in_spaces_or_hyphens_is_read_as_the_shops(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    shop.insert(f.order("1001", status="in_progress"), at=clock.now - timedelta(hours=1))
    caplog.set_level(logging.INFO)
    adapter = make_adapter(order_states=["In Progress"], delivery_states=["shipped-partially"])
    assert set(records(list(adapter.read("orders", None)))) == {"1001"}  # was: nothing sent, nothing said
    assert "order_states: 'in progress' read as 'in_progress'" in caplog.text
    facts = make_adapter(order_states=["In Progress"]).check()
    assert any("read as 'in_progress'" in fact for fact in facts)


def test_a_run_warns_about_an_unknown_state_and_sends_the_rest(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    _shipped_order(shop, clock, state="shipped")
    adapter = make_adapter(delivery_states=["shipped", "partially_shipped"])
    assert set(records(list(adapter.read("orders", None)))) == {"1001"}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == ["shopware: delivery_states: 'partially_shipped' is not a delivery state in this shop; did you mean "
                      "'shipped_partially'?; valid: cancelled, open, returned, returned_partially, shipped, "
                      "shipped_partially; it selects nothing"]
    list(adapter.read("orders", None))
    assert [r["path"] for r in shop.requests].count("/api/search/state-machine-state") == 1  # kept: test_said_once


def test_without_state_machine_read_the_names_go_unchecked(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter) -> None:
    shop.states_readable = False
    _shipped_order(shop, clock)
    facts = make_adapter(delivery_states=["partially_shipped"]).check()
    assert any("NOT checked" in fact and "state_machine:read" in fact for fact in facts)
    assert set(records(list(make_adapter().read("orders", None)))) == {"1001"}


def test_a_shop_capping_pages_below_the_state_count_is_read_in_pages(shop: FakeShopware, make_adapter: MakeAdapter) -> None:
    shop.max_limit = 5  # core's three machines hold 22 states
    facts = make_adapter().check()
    assert "order_states (in_progress, completed), delivery_states (shipped, shipped_partially): all known to the shop" in facts


def test_a_poll_says_how_many_orders_it_read_and_did_not_send(shop: FakeShopware, clock: Clock, make_adapter: MakeAdapter,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    outlet = "0190c3d2e4f5a6b7c8d9e0f1a2b3c4d5"
    shop.insert(f.order("8", channel=outlet), at=clock.now - timedelta(hours=3))
    assert set(records(list(make_adapter().read("orders", None)))) == {"8"}
    assert "not sent this poll" not in caplog.text  # nothing left out: no line
    items = [f.line_item("Shirt", "SKU-1", 1, 20.0)]
    order = shop.insert(f.order("7", status="open", items=items, deliveries=[f.delivery([(items[0], 1)])]),
                        at=clock.now - timedelta(hours=2))
    shop.set_delivery_state(order["deliveries"][0]["id"], f.state("cancelled"), at=clock.now - timedelta(hours=1))
    assert records(list(make_adapter(exclude_sales_channels=[outlet]).read("orders", None))) == {}
    assert "shopware: 2 orders read and not sent this poll: 1 sales channel excluded, 1 order state not in order_states" \
        in caplog.text


def test_check_through_the_cli_fails_on_a_misspelled_state(tmp_path: Path, sandbox: Any) -> None:
    live = FakeShopware(lambda: datetime.now(timezone.utc)).start()
    try:
        config = tmp_path / "karla-connector.toml"
        config.write_text(
            f'[karla]\nbase_url = "{sandbox.url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n'
            f'[state]\npath = "{tmp_path / "state.db"}"\n'
            f'[sources.sw]\ntype = "shopware"\nbase_url = "{live.url}"\nclient_id = "{CLIENT_ID}"\n'
            'order_states = ["paid"]\n', encoding="utf-8")
        checked = cli(config, "check", env={"KARLA_CONNECTOR_SOURCES__SW__CLIENT_SECRET": SECRET})
    finally:
        live.stop()
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "order_states: 'paid' is not an order state in this shop ('paid' is a payment state" in checked.stdout
