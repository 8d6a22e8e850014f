"""Going live with the state file the sandbox filled: every order the sandbox acknowledged counted as sent, so
the real Karla got none of them, and `check`, `sync` and `sync --full` said nothing (found by review life7).
The state file now notes which Karla acknowledged its deliveries and whether it was the sandbox (its answers
say so); the sandbox's file against a Karla elsewhere is refused (exit 2). The "real" Karla here is https://karla.invalid: the refusal comes before any request."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from connector.sandbox import Sandbox
from tests.conftest import API_KEY, SLUG, cli, write_config, write_orders
from tests.integration.test_newcomer_quickstart import _banner

REAL = "https://karla.invalid"


def _tables(state: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(f"{state.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()  # noqa: S608 - fixed names
                for t in ("karla_target", "outbox", "delivered", "seen_file", "run")}
    finally:
        conn.close()


def _tried_in_the_sandbox(tmp_path: Path, sandbox: Sandbox) -> Path:
    """The README's "No credentials yet?" path: the sandbox's lines pasted, one sync; returns the state file."""
    config = write_config(tmp_path, sandbox.url)  # (creates files/)
    write_orders(tmp_path / "files", "orders_001.csv", [1001, 1002])
    done = cli(config, "sync")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(sandbox.orders(SLUG)) == ["1001", "1002"]
    return tmp_path / "state.db"


@pytest.mark.parametrize("command", [("check",), ("sync",), ("sync", "--full"), ("sync", "--dry-run", "--full"), ("run",)])
def test_a_state_file_the_sandbox_filled_is_refused_against_a_karla_elsewhere(
    tmp_path: Path, sandbox: Sandbox, command: tuple[str, ...]
) -> None:
    state = _tried_in_the_sandbox(tmp_path, sandbox)
    noted = _tables(state)["karla_target"]
    assert [(url, user, flag) for _, url, user, flag, _ in noted] == [(sandbox.url, SLUG, 1)]
    write_orders(tmp_path / "files", "orders_002.csv", [1003])  # a new export waits too
    before = _tables(state)
    config = write_config(tmp_path, REAL)  # going live: only base_url changes (the key would too)
    done = cli(config, *command, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    text = json.loads(done.stderr)["msg"] if command == ("run",) else done.stderr  # `run` with a JSON log: a JSON line
    said = " ".join(text.split())
    assert f"the state file {state} holds what the Karla sandbox at {sandbox.url} (user {SLUG})" in said, said
    assert f"[karla] base_url is now {REAL}" in said and "count as sent in this file" in said
    assert "set [state] path to a new file" in said and "archive_folder back into the source's folder" in said
    assert f'sqlite3 {state} "DELETE FROM karla_target"' in said
    assert _tables(state) == before  # nothing read, queued or delivered, no run recorded
    assert "retrying" not in done.stderr and "unavailable" not in done.stderr.lower()  # no request was tried


def test_another_karla_on_this_machine_is_not_refused_and_is_noted(tmp_path: Path, sandbox: Sandbox) -> None:
    """A sandbox restarted on another port goes on; the note follows it."""
    state = _tried_in_the_sandbox(tmp_path, sandbox)
    since = _tables(state)["karla_target"][0][4]
    done = cli(write_config(tmp_path, sandbox.url), "sync", "--full")  # the same Karla: the note is not rewritten
    assert done.returncode == 0, done.stdout + done.stderr
    write_orders(tmp_path / "files", "orders_002.csv", [1003])
    with Sandbox(credentials={SLUG: API_KEY}) as other:
        done = cli(write_config(tmp_path, other.url), "sync")
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(other.orders(SLUG)) == ["1003"]
    [(_, url, user, flag, later)] = _tables(state)["karla_target"]
    assert (url, user, flag) == (other.url, SLUG, 1) and later > since


def test_a_state_file_that_delivered_nothing_notes_no_karla(tmp_path: Path, sandbox: Sandbox) -> None:
    """Nothing acknowledged, nothing to hold back: such a file goes live as it is."""
    (tmp_path / "files").mkdir()
    done = cli(write_config(tmp_path, sandbox.url), "sync")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _tables(tmp_path / "state.db")["karla_target"] == []


def test_the_sandbox_banner_says_to_use_a_state_file_of_its_own(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "connector", "sandbox", "--port", "0"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        banner = _banner(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    note = next(line for line in banner if "[state]" in line)
    assert note.strip().startswith("#") and "a new state file" in note, banner
    keys = next(line for line in banner if "these keys" in line)  # a config from `init` has its [karla] table
    assert keys.strip() == "# set these keys in your [karla] table (a config written by `init` has one: a second " \
                           "[karla] header is refused)", banner


def test_status_and_dlq_list_neither_refuse_nor_write(tmp_path: Path, sandbox: Sandbox) -> None:
    """They look only: a sandbox's file is shown as it is, whichever Karla the config names now."""
    state = _tried_in_the_sandbox(tmp_path, sandbox)
    before = _tables(state)
    config = write_config(tmp_path, REAL)
    for command in (("status",), ("dlq", "list")):
        done = cli(config, *command)
        assert done.returncode == 0, done.stdout + done.stderr
    assert _tables(state) == before
