"""A source letter `dlq drop` takes while `dlq retry` reads its file again is not sent (found by a review of this
session's changes: only Karla's letters were checked again, in the final transaction; a source letter's order
was read again, queued and sent, and counted as "read again").
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

import connector.dlq as dlq
from adapters.base import Page, Record, Rejected
from connector.app import Connector
from connector.commands import drop_dead_letters
from connector.replay import Replay
from connector.settings import load_settings
from state import DeadLetters
from state.db import open_state
from tests.conftest import SLUG, write_config, write_orders

_DATE = "2026-11-20T09:15:00+01:00"


@pytest.mark.parametrize("fixed", [True, False], ids=["row-fixed", "row-still-bad"])
def test_a_source_letter_dropped_while_retry_rereads_is_not_sent(tmp_path: Path, sandbox, monkeypatch,
                                                                 fixed: bool) -> None:
    config = write_config(tmp_path, sandbox.url)
    path = write_orders(tmp_path / "files", "orders_002.csv", [7, 8])
    good = path.read_text()
    path.write_text(good.replace(f"7,#7,{_DATE}", "7,#7,yesterday").replace(f"8,#8,{_DATE}", "8,#8,yesterday"))
    connector = Connector(load_settings(config))
    connector.sync()
    with connector.db.read() as conn:
        letters = {row.order_key: row.id for row in DeadLetters(conn).list()}
    connector.close()
    path.write_text(good if fixed else good.replace(f"7,#7,{_DATE}", "7,#7,yesterday"))  # 8 fixed; 7 too, or not
    reread = dlq._reread

    def operator_drops_first(*args: object, **kwargs: object) -> list[int]:  # `dlq drop 7's` from another terminal
        assert drop_dead_letters(load_settings(config), [letters["7"]]) == (1, [])
        return reread(*args, **kwargs)

    monkeypatch.setattr(dlq, "_reread", operator_drops_first)
    said = io.StringIO()
    code = dlq.retry_dead_letters(load_settings(config), None, Console(file=said, width=300))
    out = said.getvalue()
    assert sorted(sandbox.orders(SLUG)) == ["8"], out  # the other letter's order is read again and sent
    assert f"not sent: letter(s) {letters['7']}, dropped (`dlq drop`) while this command ran" in out, out
    assert "read 1 letter(s)' rows again" in out, out
    assert "kept" not in out, out
    connector = Connector(load_settings(config))
    with connector.db.read() as conn:
        assert DeadLetters(conn).list() == []  # the dropped row, still bad, is not a letter again
    connector.close()
    assert code == 0, out


def test_a_letter_the_reread_cleared_is_not_taken_for_dropped_on_a_later_page(tmp_path: Path) -> None:
    """An order's rows over two pages: the first page clears its letter; the second still sends its rows."""
    db = open_state(tmp_path / "state.db")
    with db.transaction() as conn:
        DeadLetters(conn).add([
            {"created_at": 1.0, "stage": "source", "source": "csv", "stream": "orders", "order_key": key,
             "location": f"orders_002.csv:{line}", "reason": "bad date"} for key, line in (("7", 2), ("8", 4))
        ])
        seven, eight = (row.id for row in DeadLetters(conn).list())
    replay = Replay(orders=frozenset({("orders_002.csv", "7"), ("orders_002.csv", "8")}), whole=frozenset(),
                    letters=((seven, "orders_002.csv", "7"), (eight, "orders_002.csv", "8")))
    rows = [Record(key=key, location=f"orders_002.csv:{line}") for key, line in (("7", 2), ("8", 4), ("8", 5))]
    with db.transaction() as conn:
        page, present = replay.page_for(conn, Page(records=rows[:2]))
        assert [r.key for r in page.records] == ["7", "8"] and present == {seven, eight}
        DeadLetters(conn).delete([eight])  # the page read order 8 cleanly: its letter cleared
        replay.settle(conn, present)
    with db.transaction() as conn:
        DeadLetters(conn).delete([seven])  # `dlq drop` between the pages
    with db.transaction() as conn:
        page, _ = replay.page_for(conn, Page(records=rows[1:], rejected=[Rejected("orders_002.csv:3", "bad", "7")]))
    db.close()
    assert [r.location for r in page.records] == ["orders_002.csv:4", "orders_002.csv:5"]  # order 8's rows go on
    assert page.rejected == []  # order 7's row, still bad: its letter was dropped, not written again
    assert replay.dropped == {seven} and replay.cleared == {eight}
