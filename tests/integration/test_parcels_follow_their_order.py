"""Parcels that gave up waiting for their order (``unknown_order_max_age_hours``) go with the order once it is
read: a later file, or its rejected row fixed as its letter says (found by review cli5: they stayed in their
letter, and Karla had the order without its tracking). A parcel changed since is not sent older."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.base import Record
from connector.errors import RecordRejected
from connector.items import Item
from connector.karla.client import KarlaClient
from connector.karla.models import Tracking
from connector.pages import record_parts
from connector.sender import Sender
from connector.settings import KarlaSettings
from state import DeadLetters, Outbox, Part, open_state
from tests.conftest import ORDER_HEADER, SLUG, cli, order_rows, write_config, write_fulfillments, write_orders

_AT_ONCE = {"unknown_order_max_age_hours": 1e-9}  # a parcel Karla does not know the order of is a letter at once


def _letters(config: Path) -> list[dict]:
    listed = cli(config, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _parcels(sandbox, key: str) -> dict[str, dict]:
    return {t["tracking_number"]: t for t in sandbox.orders(SLUG).get(key, {}).get("trackings", [])}


def _watch(sandbox) -> list[dict]:
    """The items Karla stores from now on (the request log keeps no bodies)."""
    stored: list[dict] = []
    upsert = sandbox.store.upsert

    def watched(slug: str, item: dict) -> dict:
        stored.append(item)
        return upsert(slug, item)

    sandbox.store.upsert = watched
    return stored


def _bad_date(folder: Path, number: int) -> Path:
    rows = [row.replace("2026-11-20T09:15:00+01:00", "2026-11-31") for row in order_rows(number)]
    path = folder / "orders_001.csv"
    path.write_text("\n".join([ORDER_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_a_parcel_goes_once_its_rejected_order_row_is_fixed_as_its_letter_says(tmp_path: Path, sandbox) -> None:
    config, files = write_config(tmp_path, sandbox.url, karla=_AT_ONCE), tmp_path / "files"
    _bad_date(files, 6002)
    write_fulfillments(files, "fulfillments_001.csv", ["6002,TR6002,DHL,,2026-11-21T10:00:00Z,,"])
    assert cli(config, "sync").returncode == 1
    order, parcel = sorted(_letters(config), key=lambda letter: letter["id"])
    assert order["stage"] == "source" and parcel["stage"] == "karla"
    assert f"after the source rejected it (see that order's letter, {order['id']}," in parcel["reason"]
    assert "fix the order as its letter says and they go with it" in parcel["reason"]
    write_orders(files, "orders_001.csv", [6002])  # fixed as told
    synced = cli(config, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert list(_parcels(sandbox, "6002")) == ["TR6002"] and _letters(config) == []


def test_a_parcel_goes_with_its_order_arriving_in_a_later_file(tmp_path: Path, sandbox) -> None:
    config, files = write_config(tmp_path, sandbox.url, karla=_AT_ONCE), tmp_path / "files"
    write_orders(files, "orders_001.csv", [6001])
    write_fulfillments(files, "fulfillments_001.csv", ["6001,TR6001,DHL,,2026-11-21T10:00:00Z,,",
                                                       "6999,TR6999,DHL,,2026-11-21T10:00:00Z,,"])
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    assert "no order data for it arrived" in letter["reason"] and "they go by themselves once the order is read" in letter["reason"]
    write_orders(files, "orders_002.csv", [6999])
    sent = _watch(sandbox)
    synced = cli(config, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert list(_parcels(sandbox, "6999")) == ["TR6999"] and _letters(config) == []
    assert [(i["id"], bool(i.get("order")), [t["tracking_number"] for t in i["trackings"]]) for i in sent] \
        == [("6999", True, ["TR6999"])]  # the order and its parcel together


def test_a_parcel_delivered_newer_since_is_not_sent_older(tmp_path: Path, sandbox) -> None:
    config, files = write_config(tmp_path, sandbox.url, karla=_AT_ONCE), tmp_path / "files"
    write_fulfillments(files, "fulfillments_001.csv", ["7,TR1,DHL,,2026-11-21T10:00:00Z,,", "7,TR2,DHL,,2026-11-21T10:00:00Z,,"])
    assert cli(config, "sync").returncode == 1 and len(_letters(config)) == 1  # both parcels: one letter
    (tmp_path / "other").mkdir()
    other = write_config(tmp_path / "other", sandbox.url)  # the order reaches Karla by other means
    write_orders(tmp_path / "other" / "files", "orders_001.csv", [7])
    assert cli(other, "sync").returncode == 0
    write_fulfillments(files, "fulfillments_002.csv", ["7,TR1,UPS,,2026-11-22T10:00:00Z,,"])  # TR1 corrected
    assert cli(config, "sync").returncode == 0 and _parcels(sandbox, "7")["TR1"]["carrier_reference"] == "ups"
    assert len(_letters(config)) == 1  # TR2 is still only in it
    write_orders(files, "orders_001.csv", [7])
    sent = _watch(sandbox)
    synced = cli(config, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert {number: t["carrier_reference"] for number, t in _parcels(sandbox, "7").items()} == {"TR1": "ups", "TR2": "dhl"}
    assert [t["tracking_number"] for i in sent for t in i["trackings"]] == ["TR2"]  # not TR1's older DHL
    assert _letters(config) == []


def test_status_says_the_order_a_parcel_waits_for_was_rejected_by_the_source(tmp_path: Path, sandbox) -> None:
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    _bad_date(files, 6002)
    write_fulfillments(files, "fulfillments_001.csv", ["6002,TR6002,DHL,,2026-11-21T10:00:00Z,,"])
    assert cli(config, "sync").returncode == 1
    (order,) = _letters(config)
    status = cli(config, "status", "--json")
    (waiting,) = json.loads(status.stdout)["waiting"]["next"]
    assert f"waiting for order 6002, which the source rejected (dead letter {order['id']})" in waiting["why"]


def test_dlq_retry_keeps_an_old_letter_that_makes_no_record_and_retries_the_others(tmp_path: Path, sandbox) -> None:
    # a letter written before a record's key had to be its order's own id: retrying it raised, and nothing went
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    write_orders(files, "orders_001.csv", [5])
    sandbox.refuse_order("5", 422, "zip_code_invalid")
    assert cli(config, "sync").returncode == 1
    sandbox.heal()
    db = open_state(tmp_path / "state.db")
    try:
        with db.transaction() as conn:
            (good,) = DeadLetters(conn).list()
            old = {name: getattr(good, name) for name in ("stage", "source", "stream", "slug", "id_type", "details", "payload")}
            DeadLetters(conn).add([{**old, "order_key": "X-5", "location": "orders_000.csv:2", "reason": "old", "created_at": 1.0}])
    finally:
        db.close()
    retried = cli(config, "dlq", "retry", "--all")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    (kept,) = _letters(config)
    assert kept["order"] == "X-5" and f"kept letter {kept['id']}: its stored order cannot be sent again" in retried.stdout
    assert "5" in sandbox.orders(SLUG)


def test_a_parcel_refused_while_its_order_was_being_read_waits_for_it(tmp_path: Path) -> None:
    # the order queued while its parcel was on the wire (a daemon reads on while it delivers): the parcel's
    # order_not_found past its max age made it a letter that the order, read already, could no longer clear
    settings = KarlaSettings(shop_slug=SLUG, api_key="k", base_url="http://127.0.0.1:9", unknown_order_max_age_hours=1)
    db, client = open_state(tmp_path / "state.db"), KarlaClient(settings)
    try:
        with db.transaction() as conn:
            Outbox(conn).enqueue(record_parts(Record(key="7", trackings=[Tracking(tracking_number="TR7")]), "w", "f", SLUG), now=0.0)
            on_wire = Item.build(Outbox(conn).scan(None, 10))
            Outbox(conn).enqueue([Part(SLUG, "7", "order_number", "order", "{}", "h", "w", "o", "orders_001.csv:2")], now=7200.0)
        sender = Sender(db, client, settings, now=lambda: 7200.0)
        refused = RecordRejected("404", details={"status": 404, "key": "order_not_found", "errors": []})
        assert sender.refusals.rejected([on_wire], refused) == []
        assert sender.result.deferred == 1 and sender.result.dead == 0
        with db.read() as conn:
            assert DeadLetters(conn).list() == [] and sorted(r.part for r in Outbox(conn).scan(None, 10)) == ["order", "tracking:TR7"]
    finally:
        client.close()
        db.close()
