"""A file name or CSV value with terminal escape sequences is shown with them escaped (``\\x1b``) in text logs,
`dlq list`, `status` and `check`, so it cannot set a terminal's title or colours; JSON keeps the real text."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from connector import cli_render as render
from tests.conftest import cli, write_config, write_orders

NAME = "orders_\x1b]0;PWNED\x07\x1b[31mRED.csv"
SHOWN = "orders_\\x1b]0;PWNED\\x07\\x1b[31mRED.csv"
WIDE = {"COLUMNS": "250"}  # no folding inside the escaped name


def test_escapes_in_a_file_name_are_shown_escaped_and_json_keeps_them(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    config.chmod(0o600)
    write_orders(tmp_path / "files", NAME, [1], zip_code="")  # a dead letter naming the file
    logged = [json.loads(line) for line in cli(config, "sync").stderr.splitlines()]
    assert any(f"{NAME}:2: order 1" in line["msg"] for line in logged)  # the JSON log escapes by itself: untouched
    as_json = cli(config, "dlq", "list", "--json")
    assert json.loads(as_json.stdout)[0]["location"] == f"{NAME}:2"

    config.write_text(config.read_text().replace('format = "json"', 'format = "text"'), encoding="utf-8")
    write_orders(tmp_path / "files", NAME.replace("RED", "RED2"), [2], zip_code="")
    results = [cli(config, "sync", env=WIDE), cli(config, "dlq", "list", env=WIDE), cli(config, "status", env=WIDE)]
    sync, listed, status = results
    assert sync.returncode == 1, sync.stdout + sync.stderr
    for result in results:
        assert not any(c in result.stdout + result.stderr for c in "\x1b\x07"), repr(result.stdout + result.stderr)
    assert SHOWN.replace("RED", "RED2") + ":2: order 2" in sync.stderr  # the text log's warning
    assert f"{SHOWN}:2" in listed.stdout and "RED2.csv:2" in listed.stdout


def test_check_and_sync_lines_escape_controls_and_show_markup_as_text() -> None:
    buffer = io.StringIO()
    out = Console(file=buffer, width=250, color_system=None)
    render.check_line(out, f"source [bold]{NAME}", True, [f"waiting: {NAME}"])
    render.check_line(out, "config file", False, [f"{NAME} [link=http://x]"])
    report = SimpleNamespace(
        sources={}, failures={"w": f"cannot read {NAME}"}, fatal={}, requests=0, bytes_sent=0, rejected=0,
        karla_error=f"bad {NAME}", delivery=SimpleNamespace(orders=0, trackings=0, dead=0, deferred=0, postponed=0,
                                                            dead_letters=[f"{NAME}:2: bad"]),
    )
    render.sync_report(out, report)
    text = buffer.getvalue()
    assert "\x1b" not in text and "\x07" not in text, repr(text)
    assert f"ok source [bold]{SHOWN}" in text and f"waiting: {SHOWN}" in text
    assert f"{SHOWN} [link=http://x]" in text and f"failed: cannot read {SHOWN}" in text and f"{SHOWN}:2: bad" in text


def test_an_error_naming_a_file_shows_its_escapes(tmp_path: Path) -> None:
    """The one-line errors before and around a command (a config file that does not exist) escape too."""
    import subprocess
    import sys

    missing = tmp_path / f"{NAME}.toml"
    result = subprocess.run([sys.executable, "-m", "connector", "--config", str(missing), "status"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "\x1b" not in result.stderr and f"{SHOWN}.toml" in result.stderr, repr(result.stderr)
