"""A newline in a CSV value or file name cannot forge a line of the text log or of what commands print
(``cli_render._safe``: ``check``'s facts, ``sync``'s dead letters): each record and each quoted text stays on
its line, shown with ``\\n``; a traceback keeps its line breaks."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from connector.logs import TextFormatter
from tests.conftest import SLUG, cli, write_config

FORGED = "20:00:00 ERROR   [warehouse] FORGED LINE"


def _record(*args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("inner")
        except ValueError:
            info = sys.exc_info()
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "orders_1.csv:5: price %r (order %s)", args, info)
    if info:  # as the redacting filter leaves it
        record.exc_text, record.exc_info = logging.Formatter().formatException(info), None
    return record


def test_a_newline_in_a_value_stays_inside_its_log_line() -> None:
    line = TextFormatter().format(_record("x", f"1004\n{FORGED}"))
    assert "\n" not in line and line.endswith(f"(order 1004\\n{FORGED})")


def test_a_traceback_keeps_its_line_breaks() -> None:
    text = TextFormatter().format(_record("x", "1004", exc=True))
    head, _, trace = text.partition("\n")
    assert head.endswith("(order 1004)") and trace.startswith("Traceback") and "ValueError: inner" in trace


def test_a_file_named_with_a_newline_forges_no_line_in_the_log_or_on_the_terminal(tmp_path: Path, sandbox) -> None:  # noqa: ANN001
    config = write_config(tmp_path, sandbox.url)
    config.write_text(config.read_text().replace('format = "json"', 'format = "text"'))
    files = tmp_path / "files"
    # No zip code column: the whole file is one dead letter, its name in the log's WARNING line.
    (files / f"orders_1\n{FORGED}.csv").write_text("order_number,sku,quantity,price\n1,S,1,1\n")
    synced = cli(config, "sync")
    assert synced.returncode in (0, 1) and "1 new dead letter(s)" in synced.stderr, synced.stderr
    # Waiting to settle, its name is in a fact `check` prints.
    config.write_text(config.read_text().replace("settle_seconds = 0", "settle_seconds = 3600"))
    (files / f"orders_2\n{FORGED}.csv").write_text("order_number\n2\n")
    checked = cli(config, "check")
    assert "still settling: " in checked.stdout, checked.stdout + checked.stderr
    for output in (synced.stderr, checked.stdout):
        lines = [line for line in output.splitlines() if "FORGED" in line]
        assert lines and all(f"\\n{FORGED}" in line for line in lines), output
    assert sandbox.orders(SLUG) == {}
