"""A record that carries its order must name it by the order's own value for ``id_type``.

Karla files an order under its own fields (karla-docs 002: the id and id_type must match the order given;
003: external_id defaults to order_number). A record keyed by anything else went through once, with its
order, and every later parcel-only request was ``order_not_found``: its parcels waited 72 hours and became
dead letters. The sandbox test shows the rule is Karla's; the others that ``Record`` enforces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Page, Record, Rejected
from connector.engine import SourceRuntime, sync_source
from connector.errors import RecordRejected
from connector.karla import KarlaClient, OrderFulfillment, OrderPlacement, Tracking
from connector.sandbox import Sandbox
from connector.settings import KarlaSettings
from state import DeadLetters
from state.db import open_state
from tests.sdk.test_contract_kit import ORDERS, KitConfig, _Base

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def placed(**fields: Any) -> OrderPlacement:
    return OrderPlacement.model_validate({"order_number": "1001", "address": {"zip_code": "10119"}, **fields})


MATCHING = [
    pytest.param("1001", "order_number", {}, id="order_number"),
    pytest.param("1001", "external_id", {}, id="external_id-defaults-to-order_number"),
    pytest.param("gid-778899", "external_id", {"external_id": "gid-778899"}, id="external_id-given"),
    pytest.param("IXF1001", "order_name", {"order_name": "IXF1001"}, id="order_name"),
]
MISMATCHED = [
    pytest.param("gid-778899", "external_id", {}, "'1001'", id="reviewer-case-external_id-defaulted"),
    pytest.param("1001", "external_id", {"external_id": "gid-778899"}, "'gid-778899'", id="external_id-given"),
    pytest.param("1002", "order_number", {}, "'1001'", id="order_number"),
    pytest.param("IXF1002", "order_name", {"order_name": "IXF1001"}, "'IXF1001'", id="order_name"),
    pytest.param("IXF1001", "order_name", {}, "no order_name", id="order_name-missing"),
]


@pytest.mark.parametrize(("key", "id_type", "fields"), MATCHING)
def test_a_key_naming_the_order_is_accepted(key: str, id_type: Any, fields: dict[str, str]) -> None:
    assert Record(key=key, id_type=id_type, order=placed(**fields)).key == key


def test_keys_the_order_cannot_contradict_are_accepted() -> None:
    Record(key=1001, order=placed())  # type: ignore[arg-type]  # an int key is made text first
    Record(key="0a1ba634-8850-4d2e-83fe-3c0b8d8e9e95", id_type="uuid", order=placed())  # Karla assigns uuids
    Record(key="gid-778899", id_type="external_id", trackings=[Tracking(tracking_number="T1")])  # no order to compare


@pytest.mark.parametrize(("key", "id_type", "fields", "value"), MISMATCHED)
def test_a_key_naming_something_else_is_refused_with_both_values(key: str, id_type: Any, fields: dict[str, str], value: str) -> None:
    with pytest.raises(ValueError) as info:
        Record(key=key, id_type=id_type, order=placed(**fields), location="erp://orders/7")
    message = str(info.value)
    assert f"Record {key!r}" in message and f"id_type {id_type!r}" in message and value in message


@pytest.mark.parametrize(("key", "id_type", "fields", "finds"), [
    *(pytest.param(*p.values, True, id=f"match-{p.id}") for p in MATCHING),
    *(pytest.param(*p.values[:3], False, id=f"mismatch-{p.id}") for p in MISMATCHED),
])
def test_the_rule_is_karlas_a_later_parcel_finds_only_a_matching_order(key: str, id_type: Any, fields: dict[str, str], finds: bool) -> None:
    """Sent as Karla's requests (the order once, then a parcel alone), outside ``Record``."""
    with Sandbox(credentials={"s": "k"}) as sandbox:
        client = KarlaClient(KarlaSettings(base_url=sandbox.url, shop_slug="s", api_key="k", retry_attempts=1))
        client.bulk_upsert("s", [OrderFulfillment(id=key, id_type=id_type, order=placed(**fields))])
        parcel = OrderFulfillment(id=key, id_type=id_type, trackings=[Tracking(tracking_number="T1")])
        if finds:
            client.bulk_upsert("s", [parcel])
            assert [t["tracking_number"] for t in sandbox.orders("s")["1001"]["trackings"]] == ["T1"]
        else:
            with pytest.raises(RecordRejected) as info:
                client.bulk_upsert("s", [parcel])
            assert [e["type"] for e in info.value.details["errors"]] == ["order_not_found"]


class ShopIds(_Base):
    """Keys its records by the shop's own id as external_id but leaves the order's external_id unset; it
    turns a ValueError from ``Record`` into a rejection, as docs/adapters.md shows."""

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        page = Page(cursor="end")
        for row in ORDERS:
            location, key = f"erp://orders/{row['id']}", f"gid-{row['id']}"
            try:
                page.records.append(Record(key=key, id_type="external_id", order=placed(order_number=str(row["id"])), location=location))
            except ValueError as exc:
                page.rejected.append(Rejected(location=location, reason=str(exc), key=key, raw=row))
        yield page


def test_such_records_become_dead_letters_naming_them_not_queued_orders(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    counts = sync_source(db, SourceRuntime("erp", ShopIds, KitConfig(), "shop"), clock=lambda: NOW)
    assert (counts.enqueued, counts.rejected) == (0, len(ORDERS))
    with db.read() as conn:
        letter = next(x for x in DeadLetters(conn).list() if x.location == "erp://orders/7")
    assert "Record 'gid-7'" in letter.reason and "external_id is '7'" in letter.reason


def test_a_key_with_surrounding_blanks_is_the_order_it_names() -> None:
    """The order's fields are stripped, so " 1001 " named an order Karla files as "1001": the key is
    stripped the same way, for the record and for a rejection's clearing match."""
    record = Record(key=" 1001 ", order=placed(order_number=" 1001"))
    assert record.key == "1001"
    assert Rejected(location="orders.csv:2", reason="bad", key=" 1001\t").key == "1001"
