"""Exports as Excel and Windows ERPs write them: header names in another case, upper-case file names, files
joined with ``cat``, trailing delimiters, and encodings that do not match the setting (cp1252 vs UTF-8,
UTF-16 "Unicode text"). Each test pins a case that once sent orders incomplete or garbled without a word.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adapters.base import Page
from adapters.csv.reader import read_keys
from connector.karla.models import dump
from tests.csvsource.test_csv_adapter import adapter, records, write


def letters(pages: list[Page]) -> dict[str, str]:
    return {r.location: r.reason for p in pages for r in p.rejected}


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# -- 1. header names in another case --------------------------------------------------------------------
def test_header_names_match_whatever_their_case_and_blanks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "orders_1.csv", "Order_Number;shipping_zip_code; Email ;Total_Order_Price;SKU;Quantity;Order_Placed_At;Currency\n"
          "4002;1010;x@y.at;12,50;A;1;07.12.2026;EUR\n")
    write(tmp_path / "fulfillments_1.csv", "ORDER_NUMBER;Tracking_Number;SKU;Quantity;Shipped_At\n4002;P1;A;1;08.12.2026\n")
    a = adapter(tmp_path)
    with caplog.at_level(logging.WARNING):
        pages = list(a.read("orders", None))
        parcels = records(list(a.read("fulfillments", None)))
    order = dump(records(pages)["4002"].order)
    assert order["email_id"] == "x@y.at" and order["total_order_price"] == 12.5
    assert [(p["sku"], p["quantity"]) for p in order["products"]] == [("A", 1)] and order["order_placed_at"].startswith("2026-12-07")
    assert [(p["sku"], p["quantity"]) for p in dump(parcels["4002"].trackings[0])["products"]] == [("A", 1)]
    assert not letters(pages) and not warnings(caplog)  # no "has no order_placed_at column": it has one


def test_a_column_named_twice_in_another_case_is_the_duplicate_letter(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", "order_number;shipping_zip_code;email;EMAIL\n1;1010;a@x.at;b@x.at\n")
    pages = list(adapter(tmp_path).read("orders", None))
    assert not records(pages)
    (reason,) = letters(pages).values()
    assert reason.startswith("column email appears more than once in the header: which one holds the value is unclear "
                             "(fix the header and upload the file again); then run `karla-connector dlq retry ID`")


def test_a_configured_column_missing_from_the_header_is_a_warning_once_per_file(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "orders_1.csv", "Bestellnummer;PLZ;E-Mail;Artikel\n1;1010;a@x.at;A\n2;1010;b@x.at;B\n")
    columns = {"order_number": "Bestellnummer", "shipping_zip_code": "PLZ", "email": "Mail", "sku": "Artikelnummer"}
    with caplog.at_level(logging.WARNING):
        pages = list(adapter(tmp_path, columns=columns, default_currency="EUR").read("orders", None))
    assert set(records(pages)) == {"1", "2"}
    told = [w for w in warnings(caplog) if "[sources.t.columns]" in w]
    assert told == ["orders_1.csv: column Mail, Artikelnummer, named in [sources.t.columns], is not in the header "
                    "(Bestellnummer, PLZ, E-Mail, Artikel): its values are not sent"]


# -- 2. and 7. a file the encoding cannot read as a whole ------------------------------------------------
def test_a_header_not_valid_in_the_encoding_makes_the_file_one_letter(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", "Bestellnummer;PLZ;Straße;Ort\n3001;80331;Hauptstrasse 5;Berlin\n"
          "3002;80331;Müllerstraße 1;München\n", "cp1252")
    columns = {"order_number": "Bestellnummer", "shipping_zip_code": "PLZ", "shipping_address_line_1": "Straße",
               "shipping_city": "Ort"}
    pages = list(adapter(tmp_path, columns=columns, default_currency="EUR").read("orders", None))
    assert not records(pages)  # 3001 went out without its street
    ((where, why),) = letters(pages).items()
    assert where == "orders_1.csv:1" and why.startswith("the header (line 1) cannot be read: byte b'\\xdf' at column 23 ")
    assert 'set encoding = "cp1252" for this source, then run dlq retry' in why
    fixed = records(list(adapter(tmp_path, columns=columns, default_currency="EUR", encoding="cp1252").read("orders", None)))
    assert dump(fixed["3001"].order)["address"]["address_line_1"] == "Hauptstrasse 5"


@pytest.mark.parametrize(("encoding", "what"), [("utf-16-le", "UTF-16 file (Excel 'Unicode text')"),
                                                ("utf-16-be", "UTF-16 file (Excel 'Unicode text')"),
                                                ("utf-32-le", "UTF-32 file")])
def test_a_utf16_file_is_one_letter_saying_how_to_save_it(tmp_path: Path, encoding: str, what: str) -> None:
    write(tmp_path / "orders_1.csv", "\ufefforder_number\tshipping_zip_code\r\n1\t1010\r\n", encoding)
    pages = list(adapter(tmp_path).read("orders", None))
    assert not records(pages)
    (reason,) = letters(pages).values()
    assert reason.startswith(f"{what}: save it as 'CSV UTF-8' and upload it again; then run `karla-connector dlq retry ID`")


# -- 5. UTF-8 read as cp1252 -----------------------------------------------------------------------------
def test_utf8_rows_under_a_cp1252_setting_are_letters_saying_so(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", "order_number;shipping_zip_code;shipping_city;shipping_name\n7001;80331;München;Jürgen Groß\n"
          "7002;10119;Berlin;Jana Weber\n7003;10119;Berlin;Łukasz Nowak\n")
    pages = list(adapter(tmp_path, encoding="cp1252", default_currency="EUR").read("orders", None))
    assert set(records(pages)) == {"7002"}  # "MÃ¼nchen" is not sent
    hint = '(this looks like UTF-8: set encoding = "utf-8-sig" for this source, then run dlq retry)'
    assert letters(pages) == {
        "orders_1.csv:2": f"line 2: 'Ã¼' at column 13 is UTF-8 'ü' read as cp1252 {hint} (order 7001 not sent: fix the row "
                          "and upload the file again)",
        # "Ł" is C5 81 in UTF-8, and cp1252 has no character 81
        "orders_1.csv:4": f"line 4: byte b'\\x81' at column 20 is not valid cp1252 {hint} (order 7003 not sent: fix the "
                          "row and upload the file again)"}


def test_a_utf8_header_under_a_cp1252_setting_makes_the_file_one_letter(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", "order_number;shipping_zip_code;Straße\n1;1010;Weg 1\n")
    pages = list(adapter(tmp_path, encoding="cp1252").read("orders", None))
    ((where, why),) = letters(pages).items()
    assert where == "orders_1.csv:1" and 'this looks like UTF-8: set encoding = "utf-8-sig"' in why and not records(pages)


def test_real_cp1252_text_under_the_cp1252_setting_reads_cleanly(tmp_path: Path) -> None:
    # every letter German and French exports use, next to each other and at the end of a line
    text = "Größe Äpfel Übermaß Ölé çà €ß"
    write(tmp_path / "orders_1.csv", f"order_number;shipping_zip_code;shipping_name\n1;1010;{text}\n2;1010;Zoë Müller\n"
          "3;1010;Weiß", "cp1252")
    pages = list(adapter(tmp_path, encoding="cp1252", default_currency="EUR").read("orders", None))
    assert not letters(pages) and dump(records(pages)["1"].order)["address"]["name"] == text


# -- 3. file names in another case ----------------------------------------------------------------------
def test_globs_match_file_names_whatever_their_case(tmp_path: Path) -> None:
    write(tmp_path / "ORDERS_20261207.CSV", "order_number;shipping_zip_code\n1;1010\n")
    write(tmp_path / "Orders_20261208.csv", "order_number;shipping_zip_code\n2;1010\n")
    write(tmp_path / "FULFILLMENTS_1.CSV", "order_number;tracking_number\n1;P1\n")
    a = adapter(tmp_path, default_currency="EUR")
    assert set(records(list(a.read("orders", None)))) == {"1", "2"}
    assert set(records(list(a.read("fulfillments", None)))) == {"1"}


def test_check_names_csv_files_no_glob_matches_when_a_glob_matches_none(tmp_path: Path) -> None:
    for name in ("Bestellungen_1.csv", "Sendungen.CSV", "orders_1.csv", ".hidden.csv", "notes.txt"):
        write(tmp_path / name, "order_number;shipping_zip_code\n1;1010\n")
    facts = adapter(tmp_path).check()
    assert "0 file(s) match 'fulfillments*.csv' (fulfillments)" in facts
    assert facts[-1] == "CSV files matching no glob: Bestellungen_1.csv, Sendungen.CSV (set orders_glob or fulfillments_glob in [sources.t])"
    write(tmp_path / "fulfillments_1.csv", "order_number;tracking_number\n1;P1\n")
    assert not [f for f in adapter(tmp_path).check() if "matching no glob" in f]  # every glob matches: nothing to say


# -- 4. a header repeated inside the file -----------------------------------------------------------------
def test_a_header_repeated_inside_the_file_is_skipped_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    header = "order_number;shipping_zip_code;sku\n"
    path = write(tmp_path / "orders_1.csv", f"{header}1;1010;A\n2;1010;B\n{header}3;1010;C\n Order_Number ; SHIPPING_ZIP_CODE;sku;\n4;1010;D\n")
    with caplog.at_level(logging.WARNING):
        pages = list(adapter(tmp_path, default_currency="EUR").read("orders", None))
    assert set(records(pages)) == {"1", "2", "3", "4"} and not letters(pages)
    assert [w for w in warnings(caplog) if "header" in w] == ["orders_1.csv: lines 4, 6 repeat the header (files joined into one?): skipped, not read as rows"]
    with path.open("rb") as f:  # the first pass (is the file grouped?) skips them too
        assert list(read_keys(f, "utf-8", None, 0)) == ["1", "2", "3", "4"]


def test_repeated_headers_are_skipped_when_rows_are_grouped_on_disk(tmp_path: Path) -> None:
    header = "order_number,shipping_zip_code,sku,product_title\n"
    part = "".join(f"{n},10119,S{n},{'x' * 200}\n" for n in range(100, 0, -1))  # not sorted: bucketed
    write(tmp_path / "orders_1.csv", header + part + header + part.replace(",S", ",T"))
    pages = list(adapter(tmp_path, default_currency="EUR", bucket_bytes=10_000).read("orders", None))
    assert "order_number" not in records(pages) and len(records(pages)) == 100 and not letters(pages)


# -- 6. a trailing delimiter ------------------------------------------------------------------------------
def test_empty_fields_after_the_last_column_are_ignored(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", "order_number;shipping_zip_code;sku\r\n1;1010;A;\r\n2;1010;B;;\r\n3;1010;C\r\n")
    write(tmp_path / "orders_2.csv", "order_number;shipping_zip_code;sku;\r\n4;1010;D;\r\n5;1010;E\r\n")
    pages = list(adapter(tmp_path, default_currency="EUR").read("orders", None))
    assert set(records(pages)) == {"1", "2", "3", "4", "5"} and not letters(pages)
    assert [p["sku"] for p in dump(records(pages)["2"].order)["products"]] == ["B"]


def test_a_row_with_a_field_too_few_or_a_value_too_many_is_still_a_letter(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", "order_number;shipping_zip_code;sku;quantity\n1;1010;2\n2;1010;B;1;X\n3;1010;C;1\n")
    pages = list(adapter(tmp_path, default_currency="EUR").read("orders", None))
    assert set(records(pages)) == {"3"}
    assert {k: v.split(" (")[0] for k, v in letters(pages).items()} == {
        "orders_1.csv:2": "has 3 fields, the header has 4", "orders_1.csv:3": "has 5 fields, the header has 4"}
