"""The "N new dead letter(s)" warning names the letters that are new, not the old ones a re-read refreshed.

A file kept for its letters is read again when it changes (and by each nightly full sync): its old bad rows
were named first and the new bad row hid behind "(and N more)" (docs review 6)."""

from __future__ import annotations

import json
from pathlib import Path

from state import DeadLetters, open_state
from tests.conftest import ORDER_HEADER, cli, order_rows, write_config


def _warnings(stderr: str) -> list[str]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line["msg"] for line in lines if "new dead letter" in line.get("msg", "")]


def _write(path: Path, bad: list[int]) -> None:
    rows = [row for n in bad for row in order_rows(n, zip_code="", lines=1)]
    path.write_text("\n".join([ORDER_HEADER, *rows]) + "\n", encoding="utf-8")


def test_a_bad_row_added_to_a_kept_file_is_the_one_named(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    export = tmp_path / "files" / "orders_001.csv"
    _write(export, [1, 2, 3, 5])
    first = cli(config, "sync")
    assert _warnings(first.stderr) and "4 new dead letter(s)" in _warnings(first.stderr)[0], first.stderr
    _write(export, [1, 2, 3, 5, 4])  # one more bad row, at the end
    second = cli(config, "sync")
    warned = _warnings(second.stderr)
    assert len(warned) == 1, second.stderr
    assert "1 new dead letter(s): orders_001.csv:6: order 4" in warned[0], warned
    assert "order 1" not in warned[0] and "more)" not in warned[0], warned
    assert "4 earlier dead letter(s) read again still stand" in warned[0], warned


def test_add_new_returns_the_positions_inserted_not_refreshed(tmp_path: Path) -> None:
    db = open_state(tmp_path / "state.db")
    row = {"created_at": 1.0, "stage": "source", "source": "w", "stream": "orders", "reason": "bad"}
    with db.transaction() as conn:
        assert DeadLetters(conn).add_new([{**row, "location": "a.csv:2"}]) == [0]
    with db.transaction() as conn:
        letters = DeadLetters(conn)
        assert letters.add_new([{**row, "location": "a.csv:2"}, {**row, "location": "a.csv:3"}]) == [1]
        assert letters.add([{**row, "location": "a.csv:3"}]) == 0 and letters.count() == 2
