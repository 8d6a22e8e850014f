"""What an ERP's export writes that the CSV mapping sent wrong or dropped (review csvmap6): negative discounts,
amounts in another currency, several tracking numbers in one cell, a line item without sku or title, country
names, one [columns] table for two kinds of file, Excel-safe ="…" cells and placeholder dates."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SLUG, cli, write_config

HEAD = "order_number;shipping_zip_code;shipping_country_code;currency;order_placed_at;sku;product_title;quantity;price"


def _sync(tmp_path: Path, sandbox, rows: list[str], header: str = HEAD, extra: str = "",
          files: dict[str, str] | None = None) -> tuple[dict, list[dict]]:
    """One real `sync` of an orders file (and ``files``): what Karla got, and the dead letters."""
    config = write_config(tmp_path, sandbox.url, extra=extra)
    (tmp_path / "files" / "orders_001.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    for name, text in (files or {}).items():
        (tmp_path / "files" / name).write_text(text, encoding="utf-8")
    run = cli(config, "sync")
    assert run.returncode in (0, 1), run.stderr[-800:]
    return sandbox.orders(SLUG), json.loads(cli(config, "dlq", "list", "--json").stdout)


def _letter(letters: list[dict], line: int) -> str:
    return next(x["reason"] for x in letters if x["location"].endswith(f"orders_001.csv:{line}"))


def test_money_off_is_sent_positive_and_a_discount_row_is_a_discount(tmp_path: Path, sandbox) -> None:
    rows = ["D1;10115;DE;EUR;2026-07-01;s1;Hemd;1;20,00;-5,00",
            "D2;10115;DE;EUR;2026-07-01;s1;Hemd;1;20,00;", "D2;;;;;;Rabatt;1;-3,50;", "D2;;;;;RAB-2;;2;(1,00);"]
    orders, letters = _sync(tmp_path, sandbox, rows, HEAD + ";discount_price")
    assert letters == []
    assert orders["D1"]["discount_price"] == 5.0  # -5.0 went out: Karla's (and Shopify's, Shopware's) is positive
    assert [p.get("sku") for p in orders["D2"]["products"]] == ["s1"]  # not products priced -3.5 and -1
    assert orders["D2"]["discounts"] == [{"code": "Rabatt", "amount": "3.5", "type": "fixed_amount"},
                                         {"code": "RAB-2", "amount": "2.0", "type": "fixed_amount"}]
    assert orders["D2"]["discount_price"] == 5.5  # no discount_price of its own: the sum of its discount rows


def test_an_amount_in_another_currency_is_refused_naming_its_column(tmp_path: Path, sandbox) -> None:
    rows = ["C1;10115;DE;;2026-07-01;s1;Hemd;1;$20.00",  # no currency, and "$" may be USD, CAD, …: Karla takes EUR
            "C2;10115;DE;EUR;2026-07-01;s1;Hemd;1;$20.00",  # contradicts its currency
            "C3;10115;DE;;2026-07-01;s1;Hemd;1;20,00 €", "C4;10115;DE;chf;2026-07-01;s1;Hemd;1;CHF 20.00"]
    orders, letters = _sync(tmp_path, sandbox, rows)
    assert "C1" not in orders and "C2" not in orders
    assert _letter(letters, 2).startswith("price '$20.00' names no single currency (USD or CAD")
    assert "write the currency code in currency, or set default_currency" in _letter(letters, 2)
    assert _letter(letters, 3).startswith("price '$20.00' is in USD or CAD")
    assert "but the order's currency says EUR" in _letter(letters, 3)
    assert orders["C3"]["currency"] == "EUR" and orders["C4"]["currency"] == "CHF"  # the sign names it


def test_several_tracking_numbers_in_one_cell_are_parcels_of_their_own(tmp_path: Path, sandbox) -> None:
    parcels = ('order_number,tracking_number,carrier,sku,quantity\nT1,"JJD1\nJJD2",DHL,s1,1\nT1,JJD3 / JJD4,DHL,,\n'
               'T1,1Z 999 AA1 01 2345 6784,UPS,,\nT1,"JJD5\tJJD6",DHL,,\nT1,"JJD7; JJD7",DHL,,\n')
    orders, letters = _sync(tmp_path, sandbox, ["T1;10115;DE;EUR;2026-07-01;s1;Hemd;1;20"],
                            files={"fulfillments_001.csv": parcels})
    trackings = {t["tracking_number"]: t for t in orders["T1"]["trackings"]}
    assert sorted(trackings) == ["1Z 999 AA1 01 2345 6784", "JJD1", "JJD2", "JJD3", "JJD4", "JJD7"]
    assert [p["sku"] for p in trackings["JJD2"]["products"]] == ["s1"]  # the row's products go with each
    (letter,) = letters
    assert letter["location"] == "fulfillments_001.csv:6"
    assert letter["reason"].startswith("tracking_number 'JJD5\\tJJD6' holds a control character")


def test_a_line_item_without_sku_or_title_is_sent(tmp_path: Path, sandbox) -> None:
    orders, letters = _sync(tmp_path, sandbox, ["L1;10115;DE;EUR;2026-07-01;s1;Hemd;1;20", "L1;;;;;;;2;3"])
    assert letters == [] and (orders["L1"]["products"][1]["quantity"], orders["L1"]["products"][1]["price"]) == (2, 3.0)


def test_country_names_and_alpha3_codes_are_mapped(tmp_path: Path, sandbox) -> None:
    rows = ["N1;10115;Deutschland;EUR;2026-07-01;s1;Hemd;1;20", "N2;10115;DEU;EUR;2026-07-01;s1;Hemd;1;20",
            "N3;SW1A 1AA;UK;EUR;2026-07-01;s1;Hemd;1;20", "N4;10115;Germanyy;EUR;2026-07-01;s1;Hemd;1;20"]
    orders, letters = _sync(tmp_path, sandbox, rows)
    assert [orders[n]["address"]["country_code"] for n in ("N1", "N2", "N3")] == ["DE", "DE", "GB"]
    assert _letter(letters, 5).startswith("shipping_country_code 'Germanyy' is not an ISO 3166-1 alpha-2 code such as DE")


def test_one_field_may_name_a_column_per_kind_of_file(tmp_path: Path, sandbox) -> None:
    extra = '[sources.warehouse.columns]\norder_number = ["Bestellnummer", "Auftragsnummer"]\n'
    orders, letters = _sync(tmp_path, sandbox, ["E1;10115;s1"], header="Bestellnummer;shipping_zip_code;sku", extra=extra,
                            files={"fulfillments_001.csv": "Auftragsnummer;tracking_number\nE1;JJD9\n"})
    assert letters == [] and [t["tracking_number"] for t in orders["E1"]["trackings"]] == ["JJD9"]


def test_a_header_letter_says_a_mapped_field_takes_a_list(tmp_path: Path, sandbox) -> None:
    extra = '[sources.warehouse.columns]\norder_number = "Bestellnummer"\n'
    _, letters = _sync(tmp_path, sandbox, ["E1;10115;s1"], header="Bestellnummer;shipping_zip_code;sku", extra=extra,
                       files={"fulfillments_001.csv": "Auftragsnummer;tracking_number\nE1;JJD9\n"})
    (letter,) = letters
    assert ('map the column in [sources.warehouse.columns] (order_number = ["Bestellnummer", "Your column"]; a list of '
            "names serves files that head it differently") in letter["reason"]


def test_excel_safe_cells_are_unwrapped_and_placeholder_dates_refused(tmp_path: Path, sandbox) -> None:
    rows = ['X1;="01067";DE;EUR;2026-07-01;="00123";Hemd;1;20', "X2;10115;DE;EUR;1900-01-01;s1;Hemd;1;20"]
    orders, letters = _sync(tmp_path, sandbox, rows)
    assert orders["X1"]["address"]["zip_code"] == "01067" and orders["X1"]["products"][0]["sku"] == "00123"
    assert _letter(letters, 3).startswith("order_placed_at '1900-01-01' is before 2000: a placeholder, not a date")
