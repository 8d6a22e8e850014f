"""`dlq retry` with the state file the sandbox filled, the config pointed at a Karla elsewhere (found by review
own8): it moved Karla's letters into the outbox and tried to send them, where `sync` refuses the file (exit 2)
before anything is sent; the letters dropped out of `dlq list`. It is now refused as `sync` refuses it, before a
letter moves. `dlq list` and `dlq drop` only look or delete (no request): they still work. The "real" Karla here
is https://karla.invalid: any request would fail and say "unavailable"."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from connector.sandbox import Sandbox
from tests.conftest import SLUG, cli, write_config, write_orders

REAL = "https://karla.invalid"


def _rows(state: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"{state.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _letter_in_the_sandbox(tmp_path: Path, sandbox: Sandbox) -> Path:
    """One order the sandbox took, one it refused (a bad zip code): a Karla letter. Returns the state file."""
    (tmp_path / "files").mkdir()
    write_orders(tmp_path / "files", "orders_001.csv", [1001])
    write_orders(tmp_path / "files", "orders_002.csv", [1002], zip_code="ABC")
    done = cli(write_config(tmp_path, sandbox.url), "sync")
    assert done.returncode == 1, done.stdout + done.stderr
    state = tmp_path / "state.db"
    assert _rows(state, "SELECT stage, order_key FROM dead_letter") == [("karla", "1002")]
    return state


def test_dlq_retry_of_the_sandboxs_file_against_a_karla_elsewhere_is_refused_before_a_letter_moves(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    state = _letter_in_the_sandbox(tmp_path, sandbox)
    [(letter,)] = _rows(state, "SELECT id FROM dead_letter")
    config = write_config(tmp_path, REAL)
    refused = " ".join(cli(config, "sync", timeout=60).stderr.split())
    assert "holds what the Karla sandbox" in refused, refused
    for args in (("--all",), (str(letter),)):
        done = cli(config, "dlq", "retry", *args, timeout=60)
        assert done.returncode == 2, done.stdout + done.stderr
        said = " ".join(done.stderr.split())
        assert said == refused  # the same message as `sync`'s, naming the file, both Karlas and the way out
        assert f"[karla] base_url is now {REAL}" in said and "set [state] path to a new file" in said
        assert "queued" not in done.stdout and "unavailable" not in (done.stdout + done.stderr).lower()
        assert _rows(state, "SELECT id, stage, order_key FROM dead_letter") == [(letter, "karla", "1002")]
        assert _rows(state, "SELECT order_key FROM outbox") == []  # nothing moved, nothing to send later
    listed = cli(config, "dlq", "list", "--json")  # looks only: still shows the letter, against any Karla
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)] == [letter]
    dropped = cli(config, "dlq", "drop", str(letter))  # deletes only: sends nothing, so no refusal either
    assert dropped.returncode == 0 and "dropped 1 dead letter(s)" in dropped.stdout, dropped.stdout + dropped.stderr
    assert _rows(state, "SELECT id FROM dead_letter") == [] and _rows(state, "SELECT order_key FROM outbox") == []


def test_dlq_retry_against_the_sandbox_that_filled_the_file_still_sends(tmp_path: Path, sandbox: Sandbox) -> None:
    """The same Karla: nothing to refuse. The letter is sent again, and refused again (the zip code is still bad)."""
    state = _letter_in_the_sandbox(tmp_path, sandbox)
    done = cli(write_config(tmp_path, sandbox.url), "dlq", "retry", "--all")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "queued 1 dead letter(s) again" in done.stdout and "holds what the Karla sandbox" not in done.stderr
    assert sorted(sandbox.orders(SLUG)) == ["1001"]
    assert _rows(state, "SELECT stage, order_key FROM dead_letter") == [("karla", "1002")]
