"""A file both globs match is read as its header's own columns say (review chg6b).

Parcel columns (tracking_number, carrier, shipped_at, tracking_url) and orders columns (titles, prices, totals,
order-level ids, …) tell the kinds apart; order_number, sku, quantity and the recipient (email, shipping_*)
may be in either (a carrier's export carries the recipient for its label: review chg6d).
A parcel export carrying the recipient's zip code was read as orders too (its order went out again with the
parcel's sku as its only product and an address of only the zip code), and a combined export with one
misnamed required column lost that side without a letter, archived, exit 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.base import AdapterContext
from adapters.csv import CsvAdapter, CsvConfig
from tests.conftest import SLUG, cli, write_config, write_orders

COMBINED = {"orders_glob": "export*.csv", "fulfillments_glob": "export*.csv", "after_processing": "archive"}


def _letters(config: Path) -> list[str]:
    return [x["reason"] for x in json.loads(cli(config, "dlq", "list", "--json").stdout)]


@pytest.mark.parametrize("recipient", [
    ("shipping_zip_code", "10119"),  # read as orders too: its order went out with the parcel's sku as its only product
    ("shipping_name,shipping_zip_code,shipping_city,shipping_country_code", "Max Muster,10119,Berlin,DE"),
    ("email", "kunde@example.com"),  # no zip code: the orders stream read it and wrote a letter, the file kept
])
def test_a_carrier_export_with_its_recipient_is_a_parcel_file(tmp_path: Path, sandbox, recipient: tuple[str, str]) -> None:
    config = write_config(tmp_path, sandbox.url, source={"orders_glob": "*.csv", "fulfillments_glob": "versand*.csv",
                                                       "after_processing": "archive"})
    folder = tmp_path / "files"
    write_orders(folder, "orders_001.csv", [1])
    assert cli(config, "sync").returncode == 0
    sent = sandbox.orders(SLUG)["1"]
    columns, values = recipient
    (folder / "versand_001.csv").write_text(f"order_number,tracking_number,carrier,shipped_at,sku,quantity,{columns}\n"
                                           f"1,JJD1,DHL,2026-11-21,SKU-1-0,1,{values}\n", encoding="utf-8")
    run = cli(config, "sync")
    assert run.returncode == 0, run.stderr[-800:]
    order = sandbox.orders(SLUG)["1"]
    assert order["products"] == sent["products"] and order["address"] == sent["address"]  # before: the parcel's
    assert [t["tracking_number"] for t in order["trackings"]] == ["JJD1"]
    assert "is read as a parcel file only: its header has parcel columns" in run.stderr
    assert (folder / "archive" / "versand_001.csv").exists() and not _letters(config)


def test_a_combined_export_without_its_tracking_column_is_a_letter_and_stays(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source=COMBINED)
    path = tmp_path / "files" / "export_001.csv"
    path.write_text("order_number,shipping_zip_code,sku,product_title,quantity,price,Sendungsnummer,carrier,shipped_at\n"
                    "1,10119,A,Hemd,1,5.00,JJD1,DHL,2026-11-21\n", encoding="utf-8")
    check = cli(config, "check")
    assert ("export_001.csv: read for its parcels and its orders; for its parcels: missing required column "
            "tracking_number: map it in [sources.warehouse.columns]") in check.stdout, check.stdout
    run = cli(config, "sync")
    assert run.returncode == 1, run.stderr[-800:]  # before: exit 0, the parcels never sent, the file archived
    assert set(sandbox.orders(SLUG)) == {"1"}
    assert any("missing required column tracking_number" in x and "map the column" in x for x in _letters(config))
    assert path.exists()


def test_a_combined_export_without_its_zip_code_column_is_a_letter_and_stays(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source=COMBINED)
    path = tmp_path / "files" / "export_001.csv"
    path.write_text("order_number,PLZ,sku,product_title,quantity,price,tracking_number,carrier,shipped_at\n"
                    "1,10119,A,Hemd,1,5.00,JJD1,DHL,2026-11-21\n", encoding="utf-8")
    run = cli(config, "sync")
    assert run.returncode == 1, run.stderr[-800:]  # before: exit 0, the order never sent, the file archived
    assert any("missing required column shipping_zip_code" in x for x in _letters(config))
    assert path.exists()


def test_an_orders_file_both_globs_match_is_read_as_orders_only(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source=COMBINED)
    write_orders(tmp_path / "files", "export_001.csv", [1, 2])
    run = cli(config, "sync")
    assert run.returncode == 0, run.stderr[-800:]
    assert set(sandbox.orders(SLUG)) == {"1", "2"} and not _letters(config)
    assert "is read as an orders file only: its header has orders columns" in run.stderr
    assert (tmp_path / "files" / "archive" / "export_001.csv").exists()


def test_check_says_how_each_file_both_globs_match_is_read(tmp_path: Path) -> None:
    (tmp_path / "export_1.csv").write_text("order_number,tracking_number,carrier,shipping_zip_code\n1,JJD1,DHL,10119\n")
    (tmp_path / "export_2.csv").write_text("order_number,shipping_zip_code,email,product_title\n1,10119,a@example.com,Hemd\n")
    (tmp_path / "export_3.csv").write_text("order_number,sku,quantity\n1,A,1\n")
    config = CsvConfig(url=str(tmp_path), orders_glob="export*.csv", fulfillments_glob="export*.csv")
    facts = CsvAdapter("t", config, AdapterContext(source="t")).check()
    assert "export_1.csv: read as a parcel file only: its header has parcel columns (tracking_number, carrier) and " \
           "none only an orders file has" in facts, facts
    assert "export_2.csv: read as an orders file only: its header has orders columns (product_title) and none only a parcel " \
           "file has" in facts
    three = next(f for f in facts if f.startswith("export_3.csv"))
    assert "for its parcels: missing required column tracking_number" in three
    assert "for its orders: missing required column shipping_zip_code" in three
