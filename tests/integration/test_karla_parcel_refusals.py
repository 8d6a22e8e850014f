"""Karla refusing a parcel by a top-level key alone (``carrier_reference_invalid``, ``shipment_exists``), naming
no field, against a real sandbox over HTTP: the order and its other parcels still go, only the refused parcel
becomes a letter, named, and the letter says what to do next."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.app import Connector, ExitCode
from connector.sandbox import Sandbox
from connector.sandbox.faults import Scripted, error
from connector.settings import load_settings
from state import DeadLetters
from tests.conftest import API_KEY, SLUG, write_config, write_fulfillments, write_orders

NEXT = "(fix it at the source and it is sent again, or fix it in Karla and `dlq retry` this letter)"


class ParcelRefusingKarla(Sandbox):
    """Refuses every write carrying one of ``bad`` parcels with Karla's top-level key and no ``errors[]``, as
    Karla's error table documents ``carrier_reference_invalid``: which parcel of which item is not said."""

    def __init__(self, key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key, self.bad = key, set[str]()

    def refusal(self, items: Any) -> Scripted | None:
        numbers = {t.get("tracking_number") for i in items if isinstance(i, dict) for t in i.get("trackings") or []}
        if numbers & self.bad:
            return Scripted(422 if self.key == "carrier_reference_invalid" else 409, None, error(self.key, "refused"))
        return super().refusal(items)


@pytest.fixture(params=["carrier_reference_invalid", "shipment_exists"])
def karla(request: pytest.FixtureRequest) -> Iterator[ParcelRefusingKarla]:
    with ParcelRefusingKarla(request.param, credentials={SLUG: API_KEY}) as sb:
        yield sb


def letters(connector: Connector) -> list:
    with connector.db.read() as conn:
        return DeadLetters(conn).list()


def parcels(karla: Sandbox, key: str) -> list[str]:
    return sorted(t["tracking_number"] for t in karla.orders(SLUG)[key]["trackings"])


def test_a_parcel_refused_by_key_alone_leaves_its_order_to_go(tmp_path: Path, karla: ParcelRefusingKarla) -> None:
    connector = Connector(load_settings(write_config(tmp_path, karla.url)), sleep=lambda _: None)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [1, 2])
    write_fulfillments(files, "fulfillments_001.csv", ["1,T1,DHL,https://t.example/1,2026-11-21T10:00:00Z,,"])
    karla.bad = {"T1"}
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    assert set(karla.orders(SLUG)) == {"1", "2"} and parcels(karla, "1") == []  # the valid order reached Karla
    (letter,) = letters(connector)
    status = 422 if karla.key == "carrier_reference_invalid" else 409
    assert letter.reason == f"Karla rejected parcel T1 of order 1: {status} {karla.key}: refused {NEXT}"
    assert "order" not in letter.payload and [t["tracking_number"] for t in letter.payload["trackings"]] == ["T1"]
    assert connector.status()["pending"] == 0
    assert [(r.status, r.items) for r in karla.requests] == [(status, 2), (status, 1), (200, 1), (200, 1)]

    karla.bad = set()  # the merchant fixes the parcel at the source: it goes and clears its letter
    write_fulfillments(files, "fulfillments_002.csv", ["1,T1,DHL,https://t.example/1b,2026-11-21T10:00:00Z,,"])
    assert connector.sync().exit_code == ExitCode.OK
    assert parcels(karla, "1") == ["T1"] and letters(connector) == []
    connector.close()


def test_one_of_several_parcels_refused_by_key_alone_is_found_and_named(tmp_path: Path, karla: ParcelRefusingKarla) -> None:
    connector = Connector(load_settings(write_config(tmp_path, karla.url)), sleep=lambda _: None)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [7])
    write_fulfillments(files, "fulfillments_001.csv", [
        f"7,{n},DHL,https://t.example/{n},2026-11-21T10:00:00Z,," for n in ("T7A", "T7B", "T7C", "T7D")
    ])
    karla.bad = {"T7C"}
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    assert parcels(karla, "7") == ["T7A", "T7B", "T7D"]
    (letter,) = letters(connector)
    assert letter.reason.startswith("Karla rejected parcel T7C of order 7: ") and letter.reason.endswith(NEXT)
    assert [t["tracking_number"] for t in letter.payload["trackings"]] == ["T7C"]
    assert connector.status()["pending"] == 0
    assert len(karla.requests) <= 5  # halving the parcels: the item, two halves, the bad half's two
    connector.close()


def test_a_refused_parcel_sent_without_its_order_is_the_letter(tmp_path: Path, karla: ParcelRefusingKarla) -> None:
    connector = Connector(load_settings(write_config(tmp_path, karla.url)), sleep=lambda _: None)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [7])
    assert connector.sync().exit_code == ExitCode.OK  # Karla has order 7; its parcels come later
    write_fulfillments(files, "fulfillments_001.csv", ["7,T7,DHL,https://t.example/7,2026-11-21T10:00:00Z,,"])
    karla.bad = {"T7"}
    karla.reset_log()
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (letter,) = letters(connector)
    assert letter.reason.startswith("Karla rejected parcel T7 of order 7: ") and len(karla.requests) == 1
    connector.close()
