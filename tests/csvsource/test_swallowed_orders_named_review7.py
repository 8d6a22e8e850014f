"""An unbalanced quote's letter names every order it swallowed (soak review karla7).

A quote never closed made the ``csv`` module join the lines after it into one broken row: one dead letter
naming the first order only. The orders on the swallowed lines were not sent either, yet no letter, log line
or ``dlq list`` row named them, and the sync said "read 0 records": a merchant fixed order 1 and had no
reason to look for order 2.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adapters.base import AdapterContext, Page
from adapters.csv import CsvAdapter, CsvConfig
from tests.conftest import SLUG, cli, write_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
HEADER = ("order_number,order_placed_at,email,shipping_zip_code,shipping_city,shipping_country_code,"
          "total_order_price,sku,product_title,quantity,price")
OPEN = '"Prod'  # a title whose quote is never closed


def _row(n: int, title: str = "P") -> str:
    return f"{n},2026-11-20T09:15:00+01:00,a{n}@b.de,10115,Berlin,DE,10.00,S{n},{title},1,5.00"


def _read(folder: Path, stream: str = "orders", **config: object) -> list[Page]:
    context = AdapterContext(source="t", clock=lambda: NOW)
    adapter = CsvAdapter("t", CsvConfig(url=f"file://{folder}", settle_seconds=0, default_currency="EUR", **config), context)
    return list(adapter.read(stream, None))


def _letters(pages: list[Page]) -> dict[str, str]:
    return {r.location: r.reason for p in pages for r in p.rejected}


def test_a_sync_names_the_order_on_the_swallowed_line_in_dlq_list(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source={"default_currency": "EUR"})
    (tmp_path / "files" / "orders_a.csv").write_text(f"{HEADER}\n{_row(1, OPEN)}\n{_row(2)}\n", encoding="utf-8")
    run = cli(config, "sync")
    assert run.returncode in (0, 1), run.stderr[-800:]
    letters = json.loads(cli(config, "dlq", "list", "--json").stdout)  # one per order: `dlq retry` asks for each
    assert [(letter["order"], letter["location"]) for letter in letters] == [("1", "orders_a.csv:2"), ("2", "orders_a.csv:2")]
    for letter in letters:
        assert "lines 2-3: has 9 fields, the header has 11" in letter["reason"]
        assert "(orders 1, 2 not sent: fix the row and upload the file again)" in letter["reason"]
    assert sandbox.orders(SLUG) == {}


@pytest.mark.parametrize("bucket_bytes", [10_000_000, 10_000], ids=["in-memory", "spilled-to-buckets"])
def test_the_key_column_anywhere_a_semicolon_file_and_not_an_address_line(tmp_path: Path, bucket_bytes: int) -> None:
    """The key read from each joined line by the file's delimiter, wherever the key column is; an address's
    second line and a repeated header name no order; the letter survives the rows' spill to disk."""
    header = "sku;order_number;shipping_zip_code;shipping_address_line_1;quantity;product_title"
    filler = [f"F{n};{n};10115;Weg 1;1;Shirt" for n in range(1900, 1500, -1)]  # not sorted, over 10 kB: grouped on disk
    (tmp_path / "orders_1.csv").write_text("\n".join([
        header, *filler, 'A;7;10115;"Hof 2\nHinterhaus";1;"Monitor 27', "B;8;10115;Weg 1;1;Shirt", header,
        "C;9;10115;Weg 1;1;Shirt", 'D;10;10115;Weg 1;1;"Cable" 2m', "E;11;10115;Weg 1;1;Shirt"]) + "\n")
    assert (tmp_path / "orders_1.csv").stat().st_size > 10_000  # two buckets at bucket_bytes 10 kB
    pages = _read(tmp_path, bucket_bytes=bucket_bytes)
    ((where, why),) = _letters(pages).items()
    assert where == "orders_1.csv:402" and why.startswith("lines 402-407: ")
    assert why.endswith("(orders 7, 8, 9, 10 not sent: fix the row and upload the file again)")
    assert {r.key for p in pages for r in p.records} == {str(n) for n in range(1501, 1901)} | {"11"}


def test_many_swallowed_orders_are_counted_past_the_first_twenty(tmp_path: Path) -> None:
    rows = [_row(1, OPEN), *(_row(n) for n in range(2, 31)), _row(31, 'P"')]
    (tmp_path / "orders_1.csv").write_text("\n".join([HEADER, *rows, _row(32)]) + "\n")
    why = _letters(_read(tmp_path))["orders_1.csv:2"]
    assert f"(orders {', '.join(map(str, range(1, 21)))} and 11 more not sent: " in why


def test_a_row_without_its_order_number_names_the_orders_it_swallowed(tmp_path: Path) -> None:
    (tmp_path / "orders_1.csv").write_text(f"{HEADER}\n{_row(1, OPEN).removeprefix('1')}\n{_row(2)}\n")
    why = _letters(_read(tmp_path))["orders_1.csv:2"]
    assert "(this row and order 2 were not sent: fix the row and upload the file again, then run `karla-connector" in why
