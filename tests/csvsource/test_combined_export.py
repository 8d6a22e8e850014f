"""A combined export: one file both globs match (a row per line item, its tracking number filled once shipped).

Both streams read it, parcels first; only the stream read last marks it read and archives, deletes or sets it
aside, counting the letters of both, and only once the other stream has read that version. Found by review
csvmap6: the orders stream skipped such a file as "read before", and with ``archive`` it was moved after its
parcels were read, its orders never sent (not even by ``sync --full``). And with ``orders_glob = "*.csv"``
every full sync read the fulfillments file as orders: a dead letter for a missing zip code column.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import AdapterContext
from adapters.csv import CsvAdapter, CsvConfig
from adapters.testing import AdapterContract
from connector.app import Connector
from connector.settings import load_settings
from state import DeadLetters
from tests.conftest import SLUG, cli, write_config, write_fulfillments, write_orders

KARLA = "http://127.0.0.1:9"  # never called: these runs only read
HEADER = "order_number,shipping_zip_code,shipping_country_code,sku,product_title,quantity,price,tracking_number,carrier,shipped_at"
SHIPPED = "1,10119,DE,A,Hemd,1,5.00,JJD1,DHL,2026-11-21"
NOT_YET = ["1,10119,DE,B,Hose,1,7.00,,,", "2,10119,DE,C,Mütze,2,3.00,,,"]  # not shipped yet: no tracking number
COMBINED = {"orders_glob": "export*.csv", "fulfillments_glob": "export*.csv"}


def _export(folder: Path, rows: list[str], name: str = "export_001.csv") -> Path:
    path = folder / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _connector(tmp_path: Path, **source: object) -> Connector:
    config = write_config(tmp_path, KARLA, source={**COMBINED, "settle_seconds": 0, **source})
    return Connector(load_settings(config))


def _queued(connector: Connector) -> set[tuple[str, str]]:
    with connector.db.read() as conn:
        return {(str(k), str(p)[:5]) for k, p in conn.exec_driver_sql("SELECT order_key, part FROM outbox")}


def _letters(connector: Connector) -> list[str]:
    with connector.db.read() as conn:
        return [row.reason for row in DeadLetters(conn).list()]


def test_a_combined_export_sends_its_orders_and_parcels_and_is_archived_once_both_read_it(tmp_path: Path, sandbox) -> None:
    """The reviewer's case, end to end: a real `sync` delivering to a Karla sandbox on 127.0.0.1."""
    config = write_config(tmp_path, sandbox.url, source={**COMBINED, "after_processing": "archive"})
    _export(tmp_path / "files", [SHIPPED, *NOT_YET])
    check = cli(config, "check")
    assert "1 file(s) match both globs (export_001.csv)" in check.stdout, check.stdout
    run = cli(config, "sync")
    assert run.returncode == 0, run.stderr[-800:]
    orders = sandbox.orders(SLUG)
    assert set(orders) == {"1", "2"}, run.stderr[-800:]  # before the fix: {} and exit 0, the file archived
    assert [t["tracking_number"] for t in orders["1"]["trackings"]] == ["JJD1"]
    assert (tmp_path / "files" / "archive" / "export_001.csv").exists() and not (tmp_path / "files" / "export_001.csv").exists()
    assert "dead letter" not in run.stderr  # the lines not shipped yet are no letters


def test_a_stop_between_the_two_reads_loses_nothing_and_reads_the_parcels_once(tmp_path: Path) -> None:
    connector = _connector(tmp_path, after_processing="archive")
    path = _export(tmp_path / "files", [SHIPPED, *NOT_YET])

    def killed(stream: str, last: bool) -> None:
        if stream == "orders":
            raise KeyboardInterrupt  # the process dies once the parcels' pages are committed

    with pytest.raises(KeyboardInterrupt):
        connector.sync_one(connector.sources["warehouse"], on_stream=killed)
    assert path.exists(), "moved before its orders were read"
    again = connector.sync_one(connector.sources["warehouse"])
    assert again.read == 2  # the two orders; the parcel's cursor says it was read, so it is not read again
    assert _queued(connector) == {("1", "order"), ("2", "order"), ("1", "track")} and not _letters(connector)
    assert not path.exists() and (tmp_path / "files" / "archive" / "export_001.csv").exists()
    assert connector.sync_one(connector.sources["warehouse"]).read == 0
    connector.close()


def test_a_bad_parcel_row_counts_for_the_file_read_by_the_orders_stream(tmp_path: Path) -> None:
    """The orders stream moves the file, so it must count the parcel letters too: into the error folder."""
    connector = _connector(tmp_path, after_processing="archive", error_folder="error")
    _export(tmp_path / "files", ["1,10119,DE,A,Hemd,1,5.00,JJD1,DHL,gestern", *NOT_YET])
    counts = connector.sync_one(connector.sources["warehouse"])
    assert counts.rejected == 1 and "shipped_at 'gestern' is not a date" in _letters(connector)[0]
    assert (tmp_path / "files" / "error" / "export_001.csv").exists()  # not the archive
    connector.close()


def test_with_keep_a_poll_reads_a_combined_export_once_and_a_full_sync_again(tmp_path: Path) -> None:
    connector = _connector(tmp_path)
    _export(tmp_path / "files", [SHIPPED, *NOT_YET])
    assert connector.sync_one(connector.sources["warehouse"]).read == 3  # a parcel and two orders
    assert connector.sync_one(connector.sources["warehouse"]).read == 0  # before the fix: orders only with --full
    assert connector.sync_one(connector.sources["warehouse"], full=True).read == 3
    assert _queued(connector) == {("1", "order"), ("2", "order"), ("1", "track")} and not _letters(connector)
    connector.close()


def test_a_fulfillments_file_an_orders_glob_also_matches_is_no_letter_on_a_full_sync(tmp_path: Path) -> None:
    """Overlapping globs the other way: `*.csv` for orders. A poll and a full sync read the same."""
    connector = _connector(tmp_path, orders_glob="*.csv", fulfillments_glob="fulfillments*.csv")
    folder = tmp_path / "files"
    write_orders(folder, "orders_001.csv", [1])
    write_fulfillments(folder, "fulfillments_001.csv", ["1,JJD1,dhl,,2026-11-21T10:00:00+01:00,SKU-1-0,1"])
    assert connector.sync_one(connector.sources["warehouse"]).rejected == 0
    full = connector.sync_one(connector.sources["warehouse"], full=True)
    assert full.rejected == 0 and not _letters(connector), _letters(connector)  # before: missing shipping_zip_code
    assert _queued(connector) == {("1", "order"), ("1", "track")}
    connector.close()


def test_check_names_the_files_both_globs_match(tmp_path: Path) -> None:
    _export(tmp_path, [SHIPPED])
    (tmp_path / "orders_1.csv").write_text("order_number\n")
    adapter = CsvAdapter("t", CsvConfig(url=str(tmp_path), orders_glob="*.csv", fulfillments_glob="export*.csv"),
                         AdapterContext(source="t"))
    facts = adapter.check()
    assert any(f.startswith("1 file(s) match both globs (export_001.csv)") for f in facts), facts


class TestCombinedExportContract(AdapterContract):
    """The contract kit on a combined export: a crash after every page loses nothing, a second run reads
    nothing new, a full sync reads everything, a dry run with ``archive`` moves nothing."""

    @pytest.fixture(autouse=True)
    def _files(self, tmp_path: Path) -> None:
        self.folder = tmp_path
        rows = [f"{n},10119,DE,S{n},T,1,1.00,{f'JJD{n}' if n % 2 else ''},{'DHL' if n % 2 else ''}," for n in range(1, 8)]
        _export(tmp_path, rows)
        _export(tmp_path, ["9,10119,DE,S,T,1,1.00,JJD9,UPS,", "10,10119,DE,S,T,1,1.00,,,"], "export_002.csv")

    def _config(self, **extra: object) -> CsvConfig:
        return CsvConfig(url=f"file://{self.folder}", page_size=2, settle_seconds=0, **COMBINED, **extra)  # type: ignore[arg-type]

    def make_adapter(self, context: AdapterContext) -> CsvAdapter:
        return CsvAdapter("t", self._config(), context)

    def make_changing_adapter(self, context: AdapterContext) -> CsvAdapter:
        return CsvAdapter("t", self._config(after_processing="archive"), context)
