"""A file whose header lacks a required column is one letter: it says what to do (found by review: it only
named the column), and that the letter clears once the changed file is read."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SLUG, cli, write_config, write_orders


def test_a_header_letter_says_how_to_fix_it_and_clears_once_fixed(tmp_path: Path, sandbox) -> None:
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    path = write_orders(files, "orders_001.csv", [1])
    path.write_text(path.read_text().replace("shipping_zip_code,", "plz,", 1))
    assert cli(config, "sync").returncode == 1
    (letter,) = json.loads(cli(config, "dlq", "list", "--json").stdout)
    assert letter["reason"].startswith("missing required column shipping_zip_code (header: order_number,")
    assert letter["reason"].endswith("map the column in [sources.warehouse.columns], or fix the header and upload the "
                                     "file again; this letter clears once the changed file is read")
    write_orders(files, "orders_001.csv", [1])
    assert cli(config, "sync").returncode == 0 and "1" in sandbox.orders(SLUG)
    assert json.loads(cli(config, "dlq", "list", "--json").stdout) == []
