"""A sync stopped between a combined export's two reads, then `dlq retry` as its letter advises: the file's
other orders go too (the retry read only its letters' orders, then marked the file read: the others never
went until a full sync; found by a crash review)."""
from pathlib import Path

import pytest

from connector.app import Connector
from connector.settings import load_settings
from tests.conftest import SLUG, cli, write_config

HEADER = "order_number,shipping_zip_code,shipping_country_code,sku,product_title,quantity,price,tracking_number,carrier,shipped_at"
COMBINED = {"orders_glob": "export*.csv", "fulfillments_glob": "export*.csv"}


def _export(folder: Path, name: str, version: int, bad: int | None = None) -> None:
    rows = [f"{n},10119,DE,S{n},Item v{version},{'abc' if n == bad else 1},5.00,{'JJD%d,DHL,2026-11-21' % n if n == bad else ',,'}"
            for n in range(1, 6)]
    (folder / name).write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")


def test_dlq_retry_after_a_stop_between_the_two_reads_sends_the_files_other_orders(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source={**COMBINED, "after_processing": "archive"})
    files = tmp_path / "files"
    _export(files, "export_001.csv", 1)
    assert cli(config, "sync").returncode == 0
    _export(files, "export_002.csv", 2, bad=2)  # one shipped row with a bad quantity: a parcel letter and an order letter

    connector = Connector(load_settings(config))

    def killed(stream: str, last: bool) -> None:
        if stream == "orders":
            raise KeyboardInterrupt  # SIGTERM/kill once the parcels' pages are committed (as the existing test does)

    with pytest.raises(KeyboardInterrupt):
        connector.sync_one(connector.sources["warehouse"], on_stream=killed)
    connector.close()

    cli(config, "dlq", "retry", "--all")  # what the parcel letter advises
    cli(config, "sync")
    titles = {k: v["products"][0]["title"] for k, v in sandbox.orders(SLUG).items()}
    assert {titles[k] for k in ("1", "3", "4", "5")} == {"Item v2"}, titles  # were all still "Item v1"
