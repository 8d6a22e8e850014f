"""What an interrupted `sync --full` says it holds (found by the crash6 review): it always said its work was "kept but
held" and asked for another full sync, even when it had read nothing (a Shopify full sync stopped while its bulk
operation ran). Now it names what is held, by source, read from the state file, or says nothing is."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from connector.app import Connector
from connector.settings import load_settings
from connector.sync_stop import Terminated, held_now, interrupted
from tests.conftest import SLUG, write_config, write_orders


def _said(full: bool, held: dict[str, int] | None) -> tuple[int, str]:
    buffer = io.StringIO()
    code = interrupted(Console(file=buffer, width=400), full, sigterm=True, held=held)
    return code, buffer.getvalue()


def test_a_full_sync_holding_nothing_does_not_say_it_holds(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    connector = Connector(load_settings(config), sleep=lambda _: None)
    try:
        assert held_now(connector, None) == {}  # stopped before the state file was opened: this run held nothing
        connector.sync_one(connector.sources["warehouse"], full=True)  # opened; nothing read
        assert held_now(connector, None) == {}
    finally:
        connector.close()
    code, said = _said(True, {})
    assert code == 143 and "held" in said and "kept but held" not in said and "none of it held" in said, said


def test_a_full_sync_stopped_after_a_changed_order_names_what_it_holds(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    files = tmp_path / "files"
    connector = Connector(load_settings(config), sleep=lambda _: None)
    rt = connector.sources["warehouse"]
    try:
        write_orders(files, "orders_001.csv", [1, 2])
        connector.sync_one(rt)
        connector.deliver()
        assert set(sandbox.orders(SLUG)) == {"1", "2"}
        with connector.db.transaction() as conn:  # delivered by a release before versions: Karla's is unknown
            conn.exec_driver_sql("UPDATE delivered SET version = NULL")
        write_orders(files, "orders_001.csv", [1, 2], zip_code="80331")  # both changed since: held by a full sync

        def stop(_counts: object) -> None:
            raise Terminated("stopped by SIGTERM")

        with pytest.raises(KeyboardInterrupt):
            connector.sync_one(rt, full=True, on_page=stop)
        assert held_now(connector, None) == {"warehouse": 2} and held_now(connector, ["other"]) == {}
    finally:
        connector.close()
    code, said = _said(True, {"warehouse": 2, "shop": 0})
    assert code == 143 and "2 changed order(s) a full sync read are kept but held (2 from warehouse;" in said, said
    assert "shop" not in said and "run sync --full again" in said


def test_without_a_count_or_for_a_plain_sync_the_words_stay(tmp_path: Path) -> None:
    assert "kept but held (it may hold older versions" in _said(True, None)[1]  # the count could not be read
    code, said = _said(False, None)
    assert code == 143 and said.startswith("interrupted (SIGTERM): what was read so far is queued and kept; the next")
