"""`sync` stopped by SIGTERM (`systemctl stop`, a shutdown during the nightly timer run) and `sync` on a full disk:
real subprocesses against the sandbox on loopback."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SLUG, cli, write_config, write_orders


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}


def _queued(state: Path) -> int:
    """Rows the sync has committed to the outbox so far (0 before its first page), read beside it."""
    try:
        conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet, or its tables not yet
        return 0


def _wait(predicate, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"sync ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling an observable event, not a guess at how long the sync takes


def _terminated(config: Path, sandbox, cwd: Path, *command: str, answered: int = 1) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """Run the CLI ``command`` and send it SIGTERM once Karla has answered ``answered`` bulk requests (one is on
    the wire then, as Karla answers slowly): its exit code, stdout and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "connector", "--config", str(config), *command],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=cwd)
    try:
        _wait(lambda: sum(r.path.endswith("/bulk") and r.status == 200 for r in sandbox.requests) >= answered, proc,
              f"{answered} answered bulk request(s)")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stdout, stderr


def _status(config: Path) -> dict:
    done = cli(config, "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sigterm_mid_sync_stops_as_ctrl_c_does_and_keeps_the_counts(tmp_path: Path, sandbox) -> None:
    """SIGTERM killed the sync outright: exit by signal, no word, and the run recorded as read: 0 although pages
    were committed. It now ends as Ctrl-C does (exit 143: 128 + SIGTERM): the delivery process records the
    request on the wire, the run keeps its counts, and the next sync finishes."""
    config = write_config(tmp_path, sandbox.url, karla={"bulk_max_orders": 10, "deliver_while_reading_after": 100},
                          source={"page_size": 100})
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 20001))
    sandbox.faults.delay = 0.05  # Karla answers slowly: a request is on the wire when the signal comes
    code, _, stderr = _terminated(config, sandbox, tmp_path, "sync")
    assert code == 143, (code, stderr[-2000:])
    assert "interrupted (SIGTERM): what was read so far is queued and kept; the next sync resumes" in stderr, stderr[-2000:]
    data = _status(config)
    run = data["sources"]["warehouse"]["last_run"]
    assert run["status"] == "stopped" and run["read"] > 0 and run["enqueued"] > 0, run  # it was interrupted, read: 0
    assert run["enqueued"] < 20000, "the sync read everything before the signal: the test proves nothing"
    # every answer Karla gave was recorded: what it has is not pending, so nothing is sent twice
    assert len(sandbox.orders(SLUG)) + data["pending"] == run["enqueued"], (len(sandbox.orders(SLUG)), data["pending"], run)
    sandbox.faults.delay = 0.0
    again = cli(config, "sync")
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(sandbox.orders(SLUG)) == 20000


@pytest.mark.parametrize("early", [True, False], ids=["delivery-process", "in-process"])
def test_a_state_file_that_cannot_grow_is_said_as_such_not_as_a_bug(tmp_path: Path, sandbox, early: bool) -> None:
    """A full disk (here a file-size limit: EFBIG, "disk I/O error") was "internal error: RuntimeError:
    OperationalError: (sqlite3.OperationalError) disk I/O error (Background on this error at: https://sqlalche.me/…)"
    with the delivery process's traceback: a bug to report. It is one line naming the file, still exit 4."""
    karla = {"retry_attempts": 1, "deliver_while_reading_after": 1 if early else 0}
    config = write_config(tmp_path, sandbox.url, karla=karla)
    config.write_text(config.read_text().replace('level = "DEBUG"', 'level = "INFO"'))  # DEBUG logs tracebacks on purpose
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 3001))
    sandbox.faults.down = True  # a backlog: 3000 orders pending
    assert cli(config, "sync").returncode == 3
    sandbox.faults.down = False
    write_orders(tmp_path / "files", "orders_002.csv", range(3001, 3021))  # one small page: the reader writes little
    state = tmp_path / "state.db"
    limit = 400_000  # the delivery's writes (the -wal file) cross it; the state file itself is only read below it
    assert state.stat().st_size > limit and not (tmp_path / "state.db-wal").exists()

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "connector", "--config", str(config), "sync"], capture_output=True,
                          text=True, env=_env(), cwd=tmp_path, timeout=120, preexec_fn=limit_files)
    assert done.returncode == 4, (done.returncode, done.stderr[-3000:])
    said = f"error: cannot write the state file {state}: disk I/O error; free disk space"
    assert said in done.stderr, done.stderr[-3000:]
    for wrong in ("internal error", "Traceback", "sqlalche.me", "RuntimeError", "please report"):
        assert wrong not in done.stderr, (wrong, done.stderr[-3000:])
    if early:
        assert "delivering complete orders from a second process" in done.stderr, done.stderr[-3000:]
    assert 0 < len(sandbox.orders(SLUG)) < 3020  # it failed while delivering
    again = cli(config, "sync")  # nothing was lost
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(sandbox.orders(SLUG)) == 3020


def test_sigterm_while_delivering_records_the_answer_on_the_wire(tmp_path: Path, sandbox) -> None:
    """After reading, a small sync delivers from its own process: SIGTERM waits for the request on the wire and
    records Karla's answer (the whole sync was killed, and Karla's orders were sent again on the next run)."""
    config = write_config(tmp_path, sandbox.url, karla={"bulk_max_orders": 10, "deliver_while_reading_after": 0})
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 301))
    sandbox.faults.delay = 0.3  # a request is on the wire when the signal comes
    code, stdout, stderr = _terminated(config, sandbox, tmp_path, "sync", answered=2)
    assert code == 143, (code, stderr[-2000:])
    assert "interrupted (SIGTERM): what was read so far is queued and kept" in stderr, stderr[-2000:]
    assert "delivered" in stdout, stdout  # the summary of what went
    data = _status(config)
    assert len(sandbox.orders(SLUG)) + data["pending"] == 300, (len(sandbox.orders(SLUG)), data["pending"])
    sandbox.faults.delay = 0.0
    sandbox.reset_log()
    again = cli(config, "sync")
    assert again.returncode == 0 and len(sandbox.orders(SLUG)) == 300, again.stderr[-2000:]
    assert sum(r.items for r in sandbox.requests if r.path.endswith("/bulk")) == data["pending"]  # none sent twice


def test_what_counts_as_a_state_file_that_cannot_be_written() -> None:
    """SQLite's full-disk and I/O errors, also inside SQLAlchemy's wrapper, and a named file's ENOSPC, EFBIG or EIO
    (also as a cause); not another SQLite error, nor an unnamed EIO (a closed terminal), which stay bugs to report."""
    import errno

    from sqlalchemy.exc import OperationalError

    from connector.cli import unwritable

    assert unwritable(OperationalError("COMMIT", {}, sqlite3.OperationalError("database or disk is full"))) == \
        (None, "database or disk is full")
    assert unwritable(sqlite3.OperationalError("disk I/O error")) == (None, "disk I/O error")
    wrapped = RuntimeError("while locking")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device", "/var/lib/k/state.db.lock")
    assert unwritable(wrapped) == ("/var/lib/k/state.db.lock", "No space left on device")
    assert unwritable(OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: outbox"))) is None
    assert unwritable(OSError(errno.EIO, "Input/output error")) is None
    assert unwritable(ValueError("disk I/O error")) is None


def test_a_state_file_that_cannot_grow_while_reading_is_said_as_such_not_as_a_source_failure(
        tmp_path: Path, sandbox) -> None:
    """The read side of the test above: a full disk while a page was committed was the source's failure ("source
    warehouse failed" with a traceback, SQLAlchemy's "Background on this error" link in the summary, exit 3 unless
    the delivery met the full disk too). It is the delivery's one line naming the state file, exit 4."""
    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 1, "deliver_while_reading_after": 0},
                          source={"page_size": 100})
    config.write_text(config.read_text().replace('level = "DEBUG"', 'level = "INFO"'))  # DEBUG logs tracebacks
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 5001))
    state = tmp_path / "state.db"
    limit = 300_000  # a few pages' worth of the -wal file: reading 5000 orders crosses it before any delivery

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "connector", "--config", str(config), "sync"], capture_output=True,
                          text=True, env=_env(), cwd=tmp_path, timeout=120, preexec_fn=limit_files)
    assert done.returncode == 4, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    said = f"error: cannot write the state file {state}: disk I/O error; free disk space"
    assert said in done.stderr, done.stderr[-3000:]
    for wrong in ("internal error", "Traceback", "sqlalche.me", "could not finish", "failed:", "please report"):
        assert wrong not in done.stdout + done.stderr, (wrong, done.stdout[-2000:], done.stderr[-3000:])
    assert not sandbox.orders(SLUG)  # it failed while reading
    again = cli(config, "sync")  # nothing was lost
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(sandbox.orders(SLUG)) == 5000


def test_sigterm_stops_dlq_retry_as_it_stops_sync(tmp_path: Path, sandbox) -> None:
    """`dlq retry` was killed outright by SIGTERM (exit by signal, no word) while it delivered what it had read
    again; it now stops as `sync` does: exit 143, the answer to the request on the wire recorded, and the next
    sync delivers the rest without sending an order twice."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, karla={"bulk_max_orders": 10}, source={"encoding": "utf-8"})
    path = write_orders(files, "orders_001.csv", range(1, 301))
    path.write_bytes(path.read_text(encoding="utf-8").replace("Nováková", "Müller").encode("cp1252"))
    assert cli(config, "sync").returncode == 1  # read as UTF-8, every row is a letter
    config.write_text(config.read_text().replace('encoding = "utf-8"', 'encoding = "cp1252"'))  # the fix
    sandbox.faults.delay = 0.3  # a request is on the wire when the signal comes
    code, _, stderr = _terminated(config, sandbox, tmp_path, "dlq", "retry", "--all", answered=2)
    assert code == 143, (code, stderr[-2000:])
    assert "interrupted (SIGTERM): what was read or queued again so far is kept" in stderr, stderr[-2000:]
    data = _status(config)
    assert 0 < len(sandbox.orders(SLUG)) < 300 and len(sandbox.orders(SLUG)) + data["pending"] == 300, \
        (len(sandbox.orders(SLUG)), data["pending"])
    sandbox.faults.delay = 0.0
    sandbox.reset_log()
    again = cli(config, "sync")
    assert again.returncode == 0 and len(sandbox.orders(SLUG)) == 300, again.stderr[-2000:]
    assert sum(r.items for r in sandbox.requests if r.path.endswith("/bulk")) == data["pending"]  # none sent twice
