"""What Karla (or a proxy) answers is stored masked: a letter's reason and details, a suspect's note. ``status``
and ``dlq list`` run from an operator shell without the API key (under systemd only the service has it), so
masking when the text is shown would mask nothing there."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path

from connector import suspects
from connector.app import Connector, ExitCode
from connector.errors import Unavailable
from connector.items import Item, pending_groups
from connector.logs import register_secrets
from connector.settings import load_settings
from tests.conftest import API_KEY, SLUG, cli, write_config, write_orders

BASIC = base64.b64encode(f"{SLUG}:{API_KEY}".encode()).decode()  # what httpx sends for [karla] user:api_key


def operator_shell(config: Path) -> Path:
    """The same config without the API key, as an operator's shell beside a systemd service has it."""
    text = config.read_text(encoding="utf-8").replace(f'api_key = "{API_KEY}"\n', "")
    assert API_KEY not in text
    config.write_text(text, encoding="utf-8")
    return config


def stored(tmp_path: Path, sql: str) -> str:
    with sqlite3.connect(tmp_path / "state.db") as conn:
        return json.dumps(conn.execute(sql).fetchall())


def test_a_refusal_echoing_the_credentials_is_stored_masked(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    echo = f"not allowed for {SLUG}:{API_KEY} (Authorization: Basic {BASIC})"  # a gateway quoting what it got
    sandbox.fail_next(422, body={"key": "invalid_payload", "message": "Validation error", "errors": [
        {"loc": ["body", 0, "order", "email"], "msg": echo, "type": "value_error", "input": f"{SLUG}:{API_KEY}"},
    ]})
    synced = cli(config, "sync")
    assert synced.returncode == ExitCode.DEAD_LETTERS, synced.stderr

    letters = stored(tmp_path, "SELECT reason, details FROM dead_letter")
    assert API_KEY not in letters and BASIC not in letters and f"not allowed for {SLUG}:***" in letters
    listed = cli(operator_shell(config), "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (letter,) = json.loads(listed.stdout)
    said = f"Karla rejected order 1: order.email: not allowed for {SLUG}:*** (Authorization: Basic ***)"
    assert letter["reason"].startswith(said)
    assert letter["details"]["errors"][0]["input"] == f"{SLUG}:***"
    assert "c1@example.com" in stored(tmp_path, "SELECT payload FROM dead_letter")  # the order itself as read


def test_a_suspects_note_is_stored_masked(tmp_path: Path, sandbox) -> None:
    register_secrets([API_KEY])  # as every command does at start
    config = write_config(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    connector = Connector(load_settings(config), sleep=lambda _: None)
    assert connector.sync(deliver=False).exit_code == ExitCode.OK
    failed = Unavailable(f"Karla bulk: 500 Internal error for user {SLUG}:{API_KEY}")
    (rows,) = pending_groups(connector.db)
    suspects.mark(connector.db, [Item.build(rows)], failed)  # the batch gave up on a 500 ...
    assert API_KEY not in stored(tmp_path, "SELECT last_error FROM outbox")
    (rows,) = pending_groups(connector.db)
    assert suspects.is_suspect(Item.build(rows))
    suspects.postpone(connector.db, Item.build(rows), failed, time.time())  # ... and the order alone again
    connector.close()

    assert API_KEY not in stored(tmp_path, "SELECT last_error FROM outbox")
    status = cli(operator_shell(config), "status", "--json")
    assert status.returncode == 0, status.stderr
    assert API_KEY not in status.stdout and f"{SLUG}:***" in status.stdout
