"""Karla refusing one field of an item, or a batch as too large, against the real sandbox over HTTP: only the
part Karla names becomes a dead letter (the order's other parts go, or wait for the fixed order), and a
413 is remembered for the rest of the process (and the early delivery process it forks) instead of being refused
and split again on every drain."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console

from connector.app import Connector, ExitCode
from connector.dlq import retry_dead_letters
from connector.early import EarlyDelivery
from connector.sender import _CAPS
from connector.settings import load_settings
from state import DeadLetters
from tests.conftest import SLUG, write_config, write_fulfillments, write_orders
from tests.integration.test_early_delivery import _connector, _read


@pytest.fixture(autouse=True)
def _new_process() -> Iterator[None]:
    """Each test a process of its own: what a 413 taught (per Karla URL) must not reach a later test's sandbox
    that happens to get the same port."""
    _CAPS.clear()
    yield
    _CAPS.clear()


def letters(connector: Connector) -> list:
    with connector.db.read() as conn:
        return DeadLetters(conn).list()


def parcels(sandbox, key: str) -> list[str]:
    return [t["tracking_number"] for t in sandbox.orders(SLUG)[key]["trackings"]]


def refuse_field(sandbox, *loc: object) -> None:
    """The next bulk write is refused naming one field of one item, as Karla's docs show ``errors[].loc``."""
    entry = {"loc": ["body", *loc], "msg": "invalid url", "type": "url_parsing"}
    sandbox.fail_next(422, body={"key": "invalid_payload", "message": "Validation error", "type": "invalid_request_error",
                                 "errors": [entry]})


def test_one_refused_parcel_leaves_its_order_and_sibling_to_go(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    connector = Connector(load_settings(config), sleep=lambda _: None)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [7, 8])
    write_fulfillments(files, "fulfillments_001.csv", [  # the file's order is not the request's: parts go by name,
        "7,T7B,DHL,https://t.example/B,2026-11-21T10:00:00Z,,",  # and T7A's two rows are one parcel
        "7,T7A,DHL,https://t.example/A,2026-11-21T10:00:00Z,SKU-7-0,1",
        "7,T7A,DHL,https://t.example/A,2026-11-21T10:00:00Z,SKU-7-1,2",
    ])
    refuse_field(sandbox, 0, "trackings", 1, "tracking_url")  # trackings[1] of order 7 is T7B
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    assert set(sandbox.orders(SLUG)) == {"7", "8"} and parcels(sandbox, "7") == ["T7A"]
    assert len(sandbox.orders(SLUG)["7"]["trackings"][0]["products"]) == 2
    (letter,) = letters(connector)
    assert letter.reason == ("Karla rejected parcel T7B of order 7: trackings.1.tracking_url: invalid url (url_parsing) "
                             "(fix it at the source and it is sent again, or fix it in Karla and `dlq retry` this letter)")
    assert "order" not in letter.payload and [t["tracking_number"] for t in letter.payload["trackings"]] == ["T7B"]
    assert connector.status()["pending"] == 0
    assert [r.status for r in sandbox.requests] == [422, 200] and sandbox.requests[1].items == 2  # 7 (order, T7A), 8

    write_fulfillments(files, "fulfillments_002.csv", ["7,T7B,DHL,https://t.example/B2,2026-11-21T10:00:00Z,,"])
    assert connector.sync().exit_code == ExitCode.OK  # the fixed parcel goes and clears its letter
    assert parcels(sandbox, "7") == ["T7A", "T7B"] and letters(connector) == []


def test_a_refused_order_update_lets_its_new_parcel_go(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    connector = Connector(load_settings(config), sleep=lambda _: None)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [7])
    assert connector.sync().exit_code == ExitCode.OK  # Karla has order 7
    write_orders(files, "orders_002.csv", [7], zip_code="1011")  # an update the sandbox refuses: no German zip
    write_fulfillments(files, "fulfillments_002.csv", ["7,T7,DHL,https://t.example/7,2026-11-21T10:00:00Z,,"])
    sandbox.reset_log()
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    assert parcels(sandbox, "7") == ["T7"] and connector.status()["pending"] == 0
    (letter,) = letters(connector)
    assert letter.reason.startswith("Karla rejected order 7: order.address.zip_code:") and letter.payload["trackings"] == []

    write_orders(files, "orders_003.csv", [7], zip_code="10117")  # the merchant fixes the zip
    assert connector.sync().exit_code == ExitCode.OK
    assert sandbox.orders(SLUG)["7"]["address"]["zip_code"] == "10117" and parcels(sandbox, "7") == ["T7"]
    assert letters(connector) == []  # the fixed order cleared the letter of its refused version
    assert [(r.status, r.items) for r in sandbox.requests] == [(422, 1), (200, 1), (200, 1)]


def test_parcels_of_a_refused_new_order_wait_for_it_and_go_with_the_fix(tmp_path: Path, sandbox) -> None:
    now = [datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)]
    config = write_config(tmp_path, sandbox.url)
    connector = Connector(load_settings(config), clock=lambda: now[0], sleep=lambda _: None)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [7], zip_code="1011")  # Karla never had order 7
    write_fulfillments(files, "fulfillments_001.csv", ["7,T7,DHL,https://t.example/7,2026-11-21T10:00:00Z,,"])
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (letter,) = letters(connector)
    assert "order" in letter.payload and letter.payload["trackings"] == []  # the parcel is not a letter: it waits
    assert "7" not in sandbox.orders(SLUG) and connector.status()["pending"] == 1
    assert "which Karla refused" in connector.status()["waiting"]["next"][0]["why"]
    sandbox.reset_log()
    now[0] += timedelta(seconds=10)
    assert connector.sync().exit_code == ExitCode.OK and sandbox.requests == []  # not sent again meanwhile

    write_orders(files, "orders_002.csv", [7], zip_code="10117")
    now[0] += timedelta(seconds=10)  # still before the parcel's own next try: the fixed order takes it along
    assert connector.sync().exit_code == ExitCode.OK
    assert parcels(sandbox, "7") == ["T7"] and letters(connector) == [] and connector.status()["pending"] == 0
    assert [(r.status, r.items) for r in sandbox.requests] == [(200, 1)]  # the order and its parcel in one item


def test_parcels_of_a_refused_order_become_a_letter_after_the_max_age(tmp_path: Path, sandbox) -> None:
    now = [datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)]
    config = write_config(tmp_path, sandbox.url, karla={"unknown_order_max_age_hours": 24})
    connector = Connector(load_settings(config), clock=lambda: now[0], sleep=lambda _: None)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [7], zip_code="1011")
    write_fulfillments(files, "fulfillments_001.csv", ["7,T7,DHL,https://t.example/7,2026-11-21T10:00:00Z,,"])
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS and connector.status()["pending"] == 1
    now[0] += timedelta(hours=25)  # never fixed
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    assert connector.status()["pending"] == 0 and len(letters(connector)) == 2
    assert letters(connector)[1].reason.startswith("Karla does not know order 7: its trackings waited more than 24 hours "
                                                   "for it after Karla refused it (see that order's letter")


def test_parcels_queued_long_before_their_order_was_refused_still_wait_for_its_fix(tmp_path: Path, sandbox) -> None:
    now = [datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)]
    config = write_config(tmp_path, sandbox.url, karla={"unknown_order_max_age_hours": 24})
    connector = Connector(load_settings(config), clock=lambda: now[0], sleep=lambda _: None)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [7])
    write_fulfillments(files, "fulfillments_001.csv", ["7,T7,DHL,https://t.example/7,2026-11-21T10:00:00Z,,"])
    sandbox.fail_next(503, count=20)
    assert connector.sync().exit_code == ExitCode.UNFINISHED  # Karla down: order 7 and T7 stay queued
    sandbox.heal()
    now[0] += timedelta(hours=25)  # Karla back a day later: it refuses the order, the parcel's wait starts now
    refuse_field(sandbox, 0, "order", "address", "zip_code")
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (letter,) = letters(connector)
    assert "order" in letter.payload and connector.status()["pending"] == 1

    write_orders(files, "orders_002.csv", [7], zip_code="10117")  # the merchant fixes the order
    now[0] += timedelta(minutes=5)
    assert connector.sync().exit_code == ExitCode.OK
    assert parcels(sandbox, "7") == ["T7"] and letters(connector) == []


def test_dlq_retry_sends_a_refused_order_part_with_its_waiting_parcel(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    connector = Connector(load_settings(config), sleep=lambda _: None)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [7])
    write_fulfillments(files, "fulfillments_001.csv", ["7,T7,DHL,https://t.example/7,2026-11-21T10:00:00Z,,"])
    refuse_field(sandbox, 0, "order", "address", "zip_code")  # a Karla stricter than the sandbox, this once
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    assert letters(connector)[0].payload["trackings"] == [] and connector.status()["pending"] == 1
    connector.close()
    sandbox.reset_log()
    code = retry_dead_letters(load_settings(config), None, Console(file=io.StringIO()))
    assert code == ExitCode.OK
    assert parcels(sandbox, "7") == ["T7"] and [(r.status, r.items) for r in sandbox.requests] == [(200, 1)]
    connector = Connector(load_settings(config), sleep=lambda _: None)
    assert letters(connector) == [] and connector.status()["pending"] == 0
    connector.close()


def test_a_loc_naming_the_item_alone_still_refuses_the_whole_item(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    connector = Connector(load_settings(config), sleep=lambda _: None)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [7, 8])
    write_fulfillments(files, "fulfillments_001.csv", ["7,T7,DHL,https://t.example/7,2026-11-21T10:00:00Z,,"])
    refuse_field(sandbox, 0, "trackings", 5, "tracking_url")  # no trackings[5]: not understood, the whole item
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (letter,) = letters(connector)
    assert "order" in letter.payload and len(letter.payload["trackings"]) == 1 and set(sandbox.orders(SLUG)) == {"8"}


def test_a_413_caps_later_batches_of_the_process(tmp_path: Path, sandbox, caplog) -> None:
    sandbox.bulk_max_items = 20  # below the connector's bulk_max_orders of 50
    config = write_config(tmp_path, sandbox.url)
    connector = Connector(load_settings(config), sleep=lambda _: None)
    caplog.set_level(logging.WARNING, logger="connector.delivery")
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", list(range(1001, 1101)))
    assert connector.sync().exit_code == ExitCode.OK
    accepted = max(r.items for r in sandbox.requests if r.status == 200)
    sandbox.reset_log()
    write_orders(files, "orders_002.csv", list(range(1101, 1201)))
    assert connector.sync().exit_code == ExitCode.OK and len(sandbox.orders(SLUG)) == 200
    second = [(r.status, r.items) for r in sandbox.requests]
    assert {status for status, _ in second} == {200} and max(n for _, n in second) <= accepted
    assert len(second) <= -(-100 // (accepted - 1))  # 8 or 9 requests, where splitting every batch took 14
    told = [r.getMessage() for r in caplog.records if "HTTP 413" in r.getMessage()]
    assert len(told) == 1 and f"Set [karla] bulk_max_orders = {accepted}" in told[0] and "bulk_max_bytes" not in told[0]
    connector.close()


@pytest.mark.parametrize("small", [[8], list(range(10, 20))], ids=["one-sibling", "ten-siblings"])
def test_one_order_too_large_on_its_own_teaches_no_batch_limit(tmp_path: Path, sandbox, caplog, small: list[int]) -> None:
    sandbox.bulk_max_bytes = 20_000  # Karla's body limit; the connector's bulk_max_bytes stays 1_000_000
    connector = Connector(load_settings(write_config(tmp_path, sandbox.url)), sleep=lambda _: None)
    caplog.set_level(logging.WARNING, logger="connector.delivery")
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", small)
    write_orders(files, "orders_002.csv", [99], lines=400)  # too large for Karla on its own: split down to it
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    assert [letter.order_key for letter in letters(connector)] == ["99"] and len(sandbox.orders(SLUG)) == len(small)
    assert not [r for r in caplog.records if "bulk_max_orders" in r.getMessage()]
    sandbox.reset_log()
    write_orders(files, "orders_003.csv", list(range(1001, 1021)))
    assert connector.sync().exit_code == ExitCode.OK
    assert [(r.status, r.items) for r in sandbox.requests] == [(200, 20)]  # Karla takes them in one
    connector.close()


def test_a_limit_learnt_in_orders_leaves_bigger_orders_their_count(tmp_path: Path, sandbox, caplog) -> None:
    sandbox.bulk_max_items = 20  # Karla limits orders per request, not bytes
    connector = Connector(load_settings(write_config(tmp_path, sandbox.url)), sleep=lambda _: None)
    caplog.set_level(logging.WARNING, logger="connector.delivery")
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", list(range(1001, 1041)))  # 413 on 40; 20 and 20 accepted
    assert connector.sync().exit_code == ExitCode.OK
    sandbox.reset_log()
    write_orders(files, "orders_002.csv", list(range(2001, 2041)), lines=4)  # bigger orders: Karla takes 20 of them too
    assert connector.sync().exit_code == ExitCode.OK
    assert [(r.status, r.items) for r in sandbox.requests] == [(200, 20), (200, 20)]
    connector.close()
    (told,) = [r.getMessage() for r in caplog.records if "HTTP 413" in r.getMessage()]
    setting = re.search(r"Set \[karla\] bulk_max_orders = (\d+) in the config", told)
    assert setting is not None and "bulk_max_bytes" not in told

    _CAPS.clear()  # a new process, configured as the warning says
    sandbox.reset_log()
    config = write_config(tmp_path, sandbox.url, karla={"bulk_max_orders": int(setting[1])})
    connector = Connector(load_settings(config), sleep=lambda _: None)
    write_fulfillments(files, "fulfillments_001.csv", [f"{n},T{n},DHL,https://t.example/{n},2026-11-21T10:00:00Z,,"
                                                       for n in range(2001, 2041)])
    assert connector.sync().exit_code == ExitCode.OK
    assert [(r.status, r.items) for r in sandbox.requests] == [(200, 20), (200, 20)]
    connector.close()


def test_the_early_delivery_process_starts_from_what_its_parent_learnt(tmp_path: Path, sandbox) -> None:
    sandbox.bulk_max_items = 20
    connector = _connector(tmp_path, sandbox, deliver_while_reading_after=0)  # no early delivery in this sync
    write_orders(tmp_path / "files", "orders_001.csv", list(range(5001, 5041)))
    assert connector.sync().exit_code == ExitCode.OK  # the daemon's process learns Karla's limit: 413 on 40
    assert [r.status for r in sandbox.requests] == [413, 200, 200]
    connector.close()
    sandbox.reset_log()
    connector = _connector(tmp_path, sandbox)  # the same process's next, big sync forks its delivery process
    early = EarlyDelivery(connector.settings, connector.db)
    try:
        _read(connector, early, range(1, 132))
        early.finish()
    finally:
        early.close()
    assert {r.status for r in sandbox.requests} == {200} and len(sandbox.orders(SLUG)) == 40 + 131
    connector.close()
