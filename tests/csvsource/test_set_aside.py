"""``CsvAdapter.set_aside``: where a file of a name waits in ``error_folder`` (``dlq retry`` asks it before it
clears a letter naming no order), for a plain path and a file:// url."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import AdapterContext
from adapters.csv import CsvAdapter, CsvConfig


@pytest.mark.parametrize("as_url", [False, True])
def test_set_aside_finds_a_file_of_that_name_in_the_error_folder(tmp_path: Path, as_url: bool) -> None:
    url = f"file://{tmp_path}" if as_url else str(tmp_path)
    adapter = CsvAdapter("shop", CsvConfig(url=url, error_folder="bad/files"), AdapterContext(source="shop"))
    assert adapter.set_aside("orders.csv") is None  # no error folder yet
    (tmp_path / "bad" / "files").mkdir(parents=True)
    (tmp_path / "orders.csv").write_text("order_number\n")  # the source folder's own file is not aside
    assert adapter.set_aside("orders.csv") is None
    (tmp_path / "bad" / "files" / "orders.csv").write_text("order_number\n")
    assert adapter.set_aside("orders.csv") == "bad/files/orders.csv"


def test_without_an_error_folder_nothing_is_aside(tmp_path: Path) -> None:
    (tmp_path / "error").mkdir()
    (tmp_path / "error" / "orders.csv").write_text("order_number\n")
    adapter = CsvAdapter("shop", CsvConfig(url=str(tmp_path)), AdapterContext(source="shop"))
    assert adapter.set_aside("orders.csv") is None
