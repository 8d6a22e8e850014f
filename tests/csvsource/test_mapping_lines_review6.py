"""Rows an ERP writes around its line items (review chg6b): a zero-filled head row is no product, and a
discount_price written 0,00 beside voucher lines is their sum, not 0."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from adapters.csv.config import Columns
from adapters.csv.fields import Fields
from adapters.csv.reader import read_rows
from tests.conftest import SLUG, cli, write_config

HEAD = "order_number;shipping_zip_code;currency;sku;product_title;quantity;price;discount_price"


def test_a_zero_filled_row_is_no_product_and_a_zero_discount_price_is_the_vouchers_sum(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    rows = ["1;10115;EUR;;;0;0,00;0,00", "1;;;s1;Hemd;1;20,00;",  # the ERP's head row, its numbers zero-filled
            "2;10115;EUR;s1;Hemd;1;20,00;0,00", "2;;;;Gutschein;1;-5,00;",
            "3;10115;EUR;;;2;0,00;", "3;;;;;0;9,50;"]  # without sku and title, a quantity or a price is a line
    (tmp_path / "files" / "orders_001.csv").write_text("\n".join([HEAD, *rows]) + "\n", encoding="utf-8")
    run = cli(config, "sync")
    assert run.returncode == 0, run.stderr[-800:]
    assert json.loads(cli(config, "dlq", "list", "--json").stdout) == []
    orders = sandbox.orders(SLUG)
    assert [p.get("sku") for p in orders["1"]["products"]] == ["s1"]  # before: a product {quantity 0, price 0} too
    assert orders["2"]["discount_price"] == 5.0  # before: 0 beside discounts [5.0]
    assert orders["2"]["discounts"] == [{"code": "Gutschein", "amount": "5.0", "type": "fixed_amount"}]
    assert [(p.get("quantity"), p.get("price")) for p in orders["3"]["products"]] == [(2, 0.0), (0, 9.5)]


@pytest.mark.parametrize(("cells", "line"), [
    (";;0;0,00", False), (";;;0.00 €", False), (";;0;(0,00)", False), (";;;", False),
    ("s1;;0;0", True), (";Hemd;;", True), (";;1;", True), (";;0;-5,00", True), (";;viele;", True),
])
def test_a_row_without_sku_and_title_is_a_line_only_with_a_non_zero_amount(cells: str, line: bool) -> None:
    """``viele`` is no zero: read as a quantity, it is the order's letter rather than dropped unsaid."""
    header, rows = read_rows(io.BytesIO(f"sku;product_title;quantity;price\n{cells}\n".encode()), "utf-8", ";")
    row = next(rows, None)
    assert (row is not None and Fields(Columns(), header).is_line(row)) is line
