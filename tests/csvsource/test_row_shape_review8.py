"""Rows whose shape or content passed the reader while their values were not what the merchant wrote
(review csvfuzz8): a field missing in a file with trailing delimiters (every later column shifted), two
letters that are no country (``XX``, ``EU``), and control characters (a NUL id colliding with the next
order's); and valid files the first checks refused (review chg8a).
"""

from __future__ import annotations

import json
from pathlib import Path

from adapters.base import Page
from adapters.normalise import country_code
from connector.karla.models import dump
from tests.conftest import SLUG, cli, write_config
from tests.csvsource.test_csv_adapter import adapter, records, write


def _read(folder: Path, text: str) -> list[Page]:
    write(folder / "orders_1.csv", text)
    return list(adapter(folder, default_currency="EUR").read("orders", None))


def _letters(pages: list[Page]) -> dict[str, str]:
    return {r.location: r.reason for p in pages for r in p.rejected}


def _products(pages: list[Page]) -> dict[str, list[tuple]]:
    return {k: [(p.get("sku"), p.get("title"), p.get("quantity")) for p in dump(r.order)["products"]]
            for k, r in records(pages).items() if r.order}


TRAILING = "order_number;shipping_zip_code;email;sku;quantity;price;\n"


def test_a_row_missing_a_field_in_a_file_with_trailing_delimiters_is_a_letter(tmp_path: Path, sandbox) -> None:
    """Through the CLI: the order was sent with a product sku '3', quantity 30 and no price, exit 0."""
    config = write_config(tmp_path, sandbox.url, source={"default_currency": "EUR"})
    (tmp_path / "files" / "orders_1.csv").write_text(
        TRAILING + "1001;10115;a@example.com;A;1;10,00;\n1001;10115;C;3;30,00;\n1002;10115;b@example.com;B;2;5,00;\n",
        encoding="utf-8")
    run = cli(config, "sync")
    assert run.returncode in (0, 1), run.stderr[-800:]
    (letter,) = json.loads(cli(config, "dlq", "list", "--json").stdout)
    assert letter["location"] == "orders_1.csv:3", letter
    assert "has 6 fields, the header 7 with its trailing ';': a field is missing" in letter["reason"]
    assert "order 1001 not sent" in letter["reason"]
    assert set(sandbox.orders(SLUG)) == {"1002"}


def test_a_missing_field_is_found_once_the_rows_showed_the_trailing_delimiter(tmp_path: Path) -> None:
    """Before any row showed the convention, a row of the named columns with its last one empty may be a
    complete row of a file written without the trailing delimiter: it is read (review chg8a: a valid file
    whose first order had no tracking url was refused)."""
    pages = _read(tmp_path, TRAILING + "1001;10115;a@example.com;A;1;10,00;\n1002;10115;x@example.com;B;1;5,00;\n"
                  "1001;10115;C;3;30,00;\n")
    assert list(_letters(pages)) == ["orders_1.csv:4"]
    assert set(records(pages)) == {"1002"}
    header = "order_number;shipping_zip_code;sku;quantity;price;tracking_url;\n"
    pages = _read(tmp_path, header + "1001;10115;A;1;10,00;\n1002;10115;B;1;5,00;https://x\n")
    assert not _letters(pages) and set(records(pages)) == {"1001", "1002"}
    pages = _read(tmp_path, "order_number;shipping_zip_code;sku;quantity;price;;\n1001;10115;A;1;;\n")
    assert not _letters(pages) and set(records(pages)) == {"1001"}  # 6 fields of 5 named: nothing is missing


def test_rows_written_without_the_headers_trailing_delimiter_are_read(tmp_path: Path) -> None:
    """A row ending in its last column's value has no trailing delimiter: from it on, the file's rows are
    taken so, and a later one whose last column is empty is a full row too."""
    pages = _read(tmp_path, TRAILING + "1001;10115;a@example.com;A;1;10,00\n1001;10115;a@example.com;B;2;\n"
                  "1002;10115;b@example.com;C;1;5,00;\n1003;10115;c@example.com;D;1;;\n")
    assert not _letters(pages)
    assert _products(pages) == {"1001": [("A", None, 1), ("B", None, 2)], "1002": [("C", None, 1)], "1003": [("D", None, 1)]}


def test_a_note_with_commas_across_its_line_break_is_read(tmp_path: Path) -> None:
    """Valid CSV (review chg8a): a stray quote closed in the same column a line later looks the same, so the
    rows of the right width that a quoted field spans are read as they are."""
    pages = _read(tmp_path, "order_number,shipping_zip_code,note,sku,quantity,price\n"
                  '1001,10115,"Bitte klingeln, Hinterhaus, 2. OG, links\nDanke, LG, Anna",A,1,10.00\n'
                  "1002,10115,,B,1,5.00\n")
    assert not _letters(pages) and set(records(pages)) == {"1001", "1002"}


def test_line_breaks_in_quoted_addresses_and_titles_of_a_wide_file_stay_fine(tmp_path: Path) -> None:
    pages = _read(tmp_path, "order_number,shipping_zip_code,shipping_address_line_1,sku,product_title,quantity,price\n"
                  '1,10115,"c/o Meyer, Hinterhaus, 2. OG\nTorstraße 1, Aufgang B",A,"Shirt, blau\nGröße M, lang",1,10.00\n'
                  '2,10115,Weg 1,B,"Set: Tasse, Teller,\nLöffel, Gabel, Messer, Brett",1,5.00\n')
    assert not _letters(pages)
    assert set(_products(pages)) == {"1", "2"}


def test_two_letters_that_are_no_country_are_a_letter_naming_the_column(tmp_path: Path) -> None:
    pages = _read(tmp_path, "order_number;shipping_zip_code;shipping_country_code;sku\n1;10115;XX;A\n2;10115;EU;A\n"
                  "3;10115;xk;A\n4;10115;uk;A\n5;10115;de;A\n")
    letters = _letters(pages)
    assert sorted(letters) == ["orders_1.csv:2", "orders_1.csv:3"]
    assert letters["orders_1.csv:3"].startswith("shipping_country_code 'EU' is not an ISO 3166-1 alpha-2 code such as DE")
    sent = {k: dump(r.order)["address"]["country_code"] for k, r in records(pages).items()}
    assert sent == {"3": "XK", "4": "GB", "5": "DE"}


def test_country_code_knows_the_assigned_codes_only() -> None:
    assert [country_code(c) for c in ("XX", "EU", "AA", "ZZ", "QQ")] == [None] * 5
    assert [country_code(c) for c in ("DE", "at", "Ch", "XK", "UK", "el", "AX", "SS", "ZW", "IC", "xi")] == \
        ["DE", "AT", "CH", "XK", "GB", "GR", "AX", "SS", "ZW", "IC", "XI"]
    assert [country_code(c) for c in ("XX", "EU", "ZZ")] == [None, None, None]


def test_a_control_character_in_a_cell_is_a_letter_naming_its_columns(tmp_path: Path, sandbox) -> None:
    """Through the CLI: two NUL ids made Karla refuse the second order as a duplicate, naming no line."""
    config = write_config(tmp_path, sandbox.url, source={"default_currency": "EUR"})
    (tmp_path / "files" / "orders_1.csv").write_text(
        "order_number;external_id;shipping_zip_code;shipping_name;sku;product_title;quantity;price\n"
        "2001;\x00;10115;Anna\x00;A;Hose\x00;1;10,00\n2002;\x00;10115;Bob;B;Mug;1;5,00\n"
        "2003;;10115;\"Tab\there\nand a break\";C;Cap\x0bwith a FileMaker break;1;5,00\n"
        "2004;;10115;Esc\x1b[31m;D;Sock;1;5,00\n", encoding="utf-8")
    run = cli(config, "sync")
    assert run.returncode in (0, 1), run.stderr[-800:]
    letters = {r["location"]: r["reason"] for r in json.loads(cli(config, "dlq", "list", "--json").stdout)}
    assert sorted(letters) == ["orders_1.csv:2", "orders_1.csv:3", "orders_1.csv:6"], letters
    assert "external_id, shipping_name, product_title hold a control character ('\\x00')" in letters["orders_1.csv:2"]
    assert "order 2001 not sent" in letters["orders_1.csv:2"]
    assert "shipping_name holds a control character ('\\x1b')" in letters["orders_1.csv:6"]
    assert set(sandbox.orders(SLUG)) == {"2003"}


def test_a_control_character_in_a_column_nothing_reads_spoils_no_row(tmp_path: Path) -> None:
    """An ERP's notes column (read by no field) holding an escape: the order goes; only read columns count."""
    pages = _read(tmp_path, "order_number;shipping_zip_code;notes;sku;product_title;quantity;price\n"
                            "3001;10115;pick \x1b[1mfast\x1b[0m;A;Hose;1;10,00\n"
                            "3002;10115;ok;B;Mug\x00;1;5,00\n")
    assert set(records(pages)) == {"3001"}
    assert _products(pages)["3001"] == [("A", "Hose", 1)]
    assert list(_letters(pages).values()) == [
        "orders_1.csv:3: product_title holds a control character ('\\x00'), which no shop value has: remove it from the export"
    ] or "product_title holds a control character" in next(iter(_letters(pages).values()))
