"""A state file another process keeps locked (an admin's sqlite3 shell with an open transaction, a slow disk): the
commands that only look never wait for it, and the others say what it is in one line, exit 3 (could not finish,
retried), instead of "internal error" with SQLAlchemy's text and tracebacks, or "free disk space".

The lock is held from the test by a real second SQLite connection; the CLI runs as a real process whose busy
timeout is shortened to 0.3 s (``state.db.BUSY_TIMEOUT_SECONDS``), so a wait that used to end in
"database is locked" after 10 s ends so at once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import SLUG, write_config, write_orders
from tests.integration.test_daemon import free_port, wait_until

BUSY = 0.3
# The CLI's own entry point, in a process whose busy timeout is BUSY seconds.
_MAIN = "import sys, state.db; state.db.BUSY_TIMEOUT_SECONDS = float(sys.argv.pop(1)); from connector.cli import main; main()"
WRONG = ("internal error", "Traceback", "sqlalche.me", "RuntimeError", "free disk space", "failed:", "could not finish")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}


def _argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", _MAIN, str(BUSY), "--config", str(config), *args]


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(config, *args), capture_output=True, text=True, env=_env(), cwd=config.parent, timeout=120)


def _said(state: Path) -> str:
    return (f"error: the state file {state} was locked by another process for over {BUSY:g} s (an open sqlite3 shell "
            "or another program writing it, or a very slow disk?); what is queued stays queued: try again")


def _told_once(done: subprocess.CompletedProcess[str], state: Path) -> None:
    assert done.returncode == 3, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    assert done.stderr.count(_said(state)) == 1, done.stderr[-3000:]
    for wrong in WRONG:
        assert wrong not in done.stdout + done.stderr, (wrong, done.stdout[-2000:], done.stderr[-3000:])


@contextmanager
def _locked(state: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction, as ``sqlite3 state.db`` with ``BEGIN IMMEDIATE;`` typed in."""
    conn = sqlite3.connect(state, isolation_level=None, timeout=30)  # waits for a commit of the sync's in flight
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE cursor SET updated_at = updated_at")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _row(state: Path, sql: str) -> tuple | None:
    """A look at the file beside the sync (None before its tables exist)."""
    try:
        conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def _config(tmp_path: Path, url: str, **karla: object) -> Path:
    config = write_config(tmp_path, url, karla={"bulk_max_orders": 10, "deliver_while_reading_after": 0, **karla},
                          source={"page_size": 100})
    config.write_text(config.read_text().replace('level = "DEBUG"', 'level = "INFO"'))  # DEBUG logs tracebacks on purpose
    return config


def test_status_and_dlq_list_do_not_wait_for_a_writer(tmp_path: Path, sandbox) -> None:
    """Every open of the file took the write lock to look at its schema version: `status` ("works beside run")
    and `dlq list` failed with "internal error: OperationalError: … database is locked [SQL: BEGIN IMMEDIATE]"."""
    config = _config(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 11))
    assert _cli(config, "sync").returncode == 0
    with _locked(tmp_path / "state.db"):
        status = _cli(config, "status", "--json")
        letters = _cli(config, "dlq", "list", "--json")
    assert status.returncode == 0, status.stderr[-2000:]
    assert json.loads(status.stdout)["sources"]["warehouse"]["last_run"]["enqueued"] == 10
    assert letters.returncode == 0 and json.loads(letters.stdout) == [], letters.stderr[-2000:]


def test_a_command_that_writes_says_the_file_is_locked(tmp_path: Path, sandbox) -> None:
    """`dlq drop` and a `sync` that meets the lock at start said "internal error" (exit 4, a bug to report)."""
    config = _config(tmp_path, sandbox.url)
    state = tmp_path / "state.db"
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 11))
    assert _cli(config, "sync").returncode == 0
    write_orders(tmp_path / "files", "orders_002.csv", range(11, 21))
    with _locked(state):
        drop = _cli(config, "dlq", "drop", "1")
        sync = _cli(config, "sync")
    _told_once(drop, state)
    _told_once(sync, state)
    again = _cli(config, "sync")  # nothing was lost
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(sandbox.orders(SLUG)) == 20


def test_a_lock_taken_while_reading_is_said_once(tmp_path: Path, sandbox) -> None:
    """The reading side: "source warehouse failed: OperationalError(…)" with a traceback, then "internal error"."""
    config = _config(tmp_path, sandbox.url)
    state = tmp_path / "state.db"
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 5001))
    proc = subprocess.Popen(_argv(config, "sync"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=tmp_path)
    try:
        wait_until(lambda: (_row(state, "SELECT count(*) FROM outbox") or (0,))[0] > 0 or proc.poll() is not None,
                   timeout=60, what="the sync's first page")
        with _locked(state):
            stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    _told_once(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), state)
    assert not sandbox.orders(SLUG), "it read everything before the lock: the test proves nothing"
    again = _cli(config, "sync")
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(sandbox.orders(SLUG)) == 5000


def test_a_lock_the_delivery_process_meets_is_said_once(tmp_path: Path, sandbox) -> None:
    """The delivery process (a big sync's second process): "ERROR the delivery process failed" with its traceback,
    then "internal error: RuntimeError: OperationalError: … database is locked", exit 4."""
    config = _config(tmp_path, sandbox.url, deliver_while_reading_after=1)
    state = tmp_path / "state.db"
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 1001))
    sandbox.faults.delay = 0.05  # reading ends long before delivery does
    proc = subprocess.Popen(_argv(config, "sync"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=tmp_path)
    try:
        wait_until(lambda: _row(state, "SELECT status FROM run WHERE kind != 'deliver' ORDER BY id DESC") == ("ok",)
                   or proc.poll() is not None, timeout=60, what="reading to end")
        with _locked(state):
            stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    _told_once(done, state)
    assert "delivering complete orders from a second process" in stderr, stderr[-2000:]
    assert "the delivery process failed" not in stderr, stderr[-3000:]
    assert len(sandbox.orders(SLUG)) < 1000, "it delivered everything before the lock: the test proves nothing"
    sandbox.faults.delay = 0.0
    again = _cli(config, "sync")
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(sandbox.orders(SLUG)) == 1000


def _metric(port: int, name: str) -> float:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return 0.0


def test_the_daemon_says_a_lock_once_and_readyz_names_it(tmp_path: Path, sandbox) -> None:
    """`run` logged "… database is locked (free disk space or fix the file's folder)" for each source."""
    port = free_port()
    config = write_config(tmp_path, sandbox.url, source={"poll_interval": 0.3},
                          extra=f"[daemon]\nhealth_port = {port}\ndelivery_interval = 0.3\n")
    state = tmp_path / "state.db"
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(_argv(config, "run"), stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=tmp_path)
    ok, failed = (f'karla_connector_sync_runs_total{{source="warehouse",status="{s}"}}' for s in ("ok", "failed"))
    try:
        wait_until(lambda: _up(port) and _metric(port, ok) >= 1 and len(sandbox.orders(SLUG)) == 1, timeout=30,
                   what="the first poll delivered")
        with _locked(state):
            write_orders(tmp_path / "files", "orders_002.csv", [2])
            wait_until(lambda: _metric(port, failed) >= 3, timeout=30, what="three polls that met the lock")
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)
        wait_until(lambda: len(sandbox.orders(SLUG)) == 2, timeout=30, what="the order read once the lock went")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    said = (f"the state file {state} was locked by another process for over {BUSY:g} s (an open sqlite3 shell or "
            "another program writing it, or a very slow disk?)")
    messages = [e["msg"] for e in entries if e["level"] in ("error", "warning")]
    assert len(messages) == len(set(messages)), messages  # each once per episode
    assert f"source warehouse not read: {said}" in messages, messages
    assert set(messages) <= {f"source warehouse not read: {said}", f"delivery interrupted, orders stay queued: {said}"}, messages
    assert not any("exc" in e for e in entries if e["level"] != "debug"), "a traceback was logged"
    problem = ready.json()["problems"]["state"]
    assert problem.endswith(f"database is locked: another process held its write lock for over {BUSY:g} s"), problem


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("wrapped", [True, False], ids=["sqlalchemy", "sqlite3"])
def test_what_counts_as_a_locked_state_file(wrapped: bool) -> None:
    """SQLITE_BUSY, also inside SQLAlchemy's wrapper or as a cause; not SQLITE_LOCKED's "database table is locked"
    (a shared cache within one process) nor any other error. A lock is no full disk: nobody is told to free space."""
    from connector.errors import ConnectorError
    from connector.job_errors import StateBusy, locked, state_message, sync_failure, unwritable

    def err(words: str) -> BaseException:
        raw = sqlite3.OperationalError(words)
        return OperationalError("BEGIN IMMEDIATE", {}, raw) if wrapped else raw

    busy = err("database is locked")
    assert locked(busy) and unwritable(busy) == (None, "database is locked")  # (the reading side re-raises it)
    cause = RuntimeError("while committing")
    cause.__cause__ = busy
    assert locked(cause)
    assert not locked(err("database table is locked")) and not locked(err("disk I/O error"))
    assert not locked(ValueError("database is locked"))
    assert state_message("/srv/k.db", busy).startswith("the state file /srv/k.db was locked by another process")
    if wrapped:  # as the daemon's reading meets it
        failure = sync_failure("warehouse", busy, "/srv/k.db")  # type: ignore[arg-type]
        assert failure.episode == "state:warehouse" and not failure.traceback
        assert failure.message.startswith("source warehouse not read: the state file /srv/k.db was locked"), failure
    # the delivery process's, as `status` keeps it: its message (a ConnectorError's str), not a repr
    assert locked(StateBusy("the state file /srv/k.db was locked")) and issubclass(StateBusy, ConnectorError)


def test_a_run_failed_by_its_state_file_keeps_sqlites_words(tmp_path: Path) -> None:
    """A run the state file failed (locked by another process, or full) is recorded with the line `status` can
    show, not SQLAlchemy's repr with its statement and its "Background on this error" link."""
    from adapters.base import Page, StreamSpec
    from connector.engine import SourceRuntime, sync_source
    from state import open_state
    from tests.sdk.test_contract_kit import KitConfig

    NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)

    class Locked:
        type, Config = "kit", KitConfig

        def __init__(self, name, config, context) -> None: ...
        def streams(self) -> list[StreamSpec]: return [StreamSpec("orders")]

        def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
            raise OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))
            yield Page()

    db = open_state(tmp_path / "s.db")
    try:
        with pytest.raises(OperationalError):
            sync_source(db, SourceRuntime("erp", Locked, KitConfig(), "shop"), clock=lambda: NOW)  # type: ignore[arg-type]
        with db.read() as conn:
            status, error = conn.exec_driver_sql("select status, error from run").fetchone()
    finally:
        db.close()
    assert status == "failed" and error.startswith(f"the state file {tmp_path / 's.db'} was locked"), error
    assert "sqlalche.me" not in error and "BEGIN IMMEDIATE" not in error
