"""A file whose header lacks a required column is one letter: it says what to do (found by review: it only
named the column), and it stands after the fix until `dlq retry` reads the fixed file (review diff5: a clean
read of a file of that name may be the next export, whose orders are not the letter's)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SLUG, cli, write_config, write_orders


def test_a_header_letter_says_how_to_fix_it_and_clears_by_dlq_retry(tmp_path: Path, sandbox) -> None:
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    path = write_orders(files, "orders_001.csv", [1])
    path.write_text(path.read_text().replace("shipping_zip_code,", "plz,", 1))
    assert cli(config, "sync").returncode == 1
    (letter,) = json.loads(cli(config, "dlq", "list", "--json").stdout)
    assert letter["reason"].startswith("missing required column shipping_zip_code (header: order_number,")
    assert letter["reason"].endswith("map the column in [sources.warehouse.columns] (shipping_zip_code = \"Your column\"), "
                                     "or fix the header and upload the "
                                     "file again, then run `karla-connector dlq retry ID`: it reads the file again, and "
                                     "no other read clears this letter, which names no order; or `karla-connector dlq "
                                     "drop ID` once its orders are in Karla")
    write_orders(files, "orders_001.csv", [1])
    assert cli(config, "sync").returncode == 0 and "1" in sandbox.orders(SLUG)
    assert [x["id"] for x in json.loads(cli(config, "dlq", "list", "--json").stdout)] == [letter["id"]]
    retried = cli(config, "dlq", "retry", str(letter["id"]))
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert json.loads(cli(config, "dlq", "list", "--json").stdout) == []
