"""The shipped example adapter's letters clear (review sdk8, finding 1): a line that is not JSON names no
order, so only `dlq retry` reading the file to its end without it can clear its letter, and it can tell
only from the adapter's FileMark of that file (``orders.jsonl``, as the letter's location names it)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from connector.app import Connector, ExitCode
from connector.dlq import retry_dead_letters
from connector.settings import load_settings
from state import DeadLetters
from tests.conftest import SLUG, write_config

A1 = {"number": "E-1", "updated": "2026-11-20T10:00:00Z", "zip": "10119"}


def test_a_fixed_broken_line_of_the_example_adapter_clears_on_dlq_retry(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(A1) + '\n{"number": "E-2", "updated": \n')  # line 2: cut off, not JSON
    config = write_config(tmp_path, sandbox.url)
    config.write_text(config.read_text().split("[sources.warehouse]")[0] + f'[sources.toy]\ntype = "jsonl"\npath = "{path}"\n')
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    with connector.db.read() as conn:
        (letter,) = DeadLetters(conn).list()
    assert (letter.order_key, letter.location) == (None, "orders.jsonl:2")
    connector.close()

    path.write_text(json.dumps(A1) + "\n" + json.dumps({**A1, "number": "E-2", "updated": "2026-11-21T10:00:00Z"}) + "\n")
    out = io.StringIO()
    assert retry_dead_letters(load_settings(config), [letter.id], Console(file=out, width=400)) == ExitCode.OK
    assert "kept" not in out.getvalue(), out.getvalue()
    assert set(sandbox.orders(SLUG)) == {"E-1", "E-2"}
    connector = Connector(load_settings(config))
    with connector.db.read() as conn:
        assert DeadLetters(conn).list() == []
    connector.close()
