"""The running daemon (a real subprocess) when something around it breaks: Karla down, a plugin that does not
load, a state file that cannot grow. Found by an operations review; each waits on the daemon's metrics, its
log or the sandbox, never on a sleep."""

from __future__ import annotations

import json
import re
import resource
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import write_config, write_orders
from tests.integration.test_daemon import Daemon, free_port, wait_until


def _config(tmp_path: Path, url: str, port: int, extra: str = "", **source: Any) -> Path:
    return write_config(tmp_path, url, source={"poll_interval": 0.3, **source},
                        extra=f"{extra}[daemon]\nhealth_port = {port}\ndelivery_interval = 0.3\nshutdown_grace_seconds = 31\n")


def _metric(port: int, name: str) -> float | None:
    """One sample of /metrics (``name`` with its labels, as rendered), or None before it exists."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def _log(daemon: Daemon) -> list[dict[str, Any]]:
    lines = daemon.log_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_a_karla_outage_does_not_keep_the_sources_from_being_read(tmp_path: Path, sandbox) -> None:
    """A poll that queued something drained on its own thread: while that drain waited out Karla's Retry-After
    (minutes), the source was not polled, its lag grew and a new file was not read."""
    port = free_port()
    config = _config(tmp_path, sandbox.url, port)
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    sandbox.fail_next(503, count=1000, retry_after=120)  # within the retry budget: a drain waits it out
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        assert sandbox.wait_for(lambda sb: any(r.status == 503 for r in sb.requests), timeout=20), "no delivery attempt"
        write_orders(tmp_path / "files", "orders_002.csv", [2])
        wait_until(lambda: _metric(port, "karla_connector_outbox_depth") == 2.0, timeout=15,
                   what="the file dropped during the outage to be read")
        ok = 'karla_connector_sync_runs_total{source="warehouse",status="ok"}'
        runs = _metric(port, ok) or 0.0
        wait_until(lambda: (_metric(port, ok) or 0.0) > runs, timeout=15, what="polls to go on")
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log_path.read_text()[-3000:]


def test_a_source_whose_plugin_does_not_load_makes_the_daemon_unready(tmp_path: Path, sandbox) -> None:
    """`sync` and `check` exit 2 for it; the daemon logged one ERROR, counted "1 of 1" and stayed ready forever."""
    shadow = tmp_path / "shadow"  # the working folder comes first on the daemon's path: a plugin whose dependency is missing
    shadow.mkdir()
    (shadow / "karla_example_adapter.py").write_text("import not_installed_dependency_xyz\n")
    port = free_port()
    config = _config(tmp_path, sandbox.url, port, extra='[sources.feed]\ntype = "jsonl"\n')
    daemon = Daemon(config, tmp_path, cwd=shadow)
    try:
        daemon.wait_message("READY=1")
        wait_until(lambda: any("daemon started" in e["msg"] for e in _log(daemon)), timeout=15, what="the start-up line")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log_path.read_text()[-3000:]
    assert ready.status_code == 503, ready.text
    problem = ready.json()["problems"]["feed"]
    assert "needs a human" in problem and "not_installed_dependency_xyz" in problem, problem
    (started,) = [e["msg"] for e in _log(daemon) if "daemon started" in e["msg"]]
    assert started.startswith("daemon started with 1 enabled source(s) of 2; 1 not loaded: feed"), started


def test_a_state_file_that_cannot_grow_is_said_once_without_a_traceback(tmp_path: Path, sandbox) -> None:
    """A full disk (here: a file-size limit, EFBIG) was logged as a bug in the adapter, with a traceback, every poll,
    and /readyz carried SQLAlchemy's "Background on this error" link."""
    port = free_port()
    config = _config(tmp_path, sandbox.url, port)
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    assert _cli_sync(config)  # the state file exists, with one order delivered
    write_orders(tmp_path / "files", "orders_002.csv", range(2, 3002))  # more than the limit lets the file take
    limit = 4 * (tmp_path / "state.db").stat().st_size + 2_000_000  # the log file stays well below it

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    daemon = Daemon(config, tmp_path, preexec_fn=limit_files)
    failed = 'karla_connector_sync_runs_total{source="warehouse",status="failed"}'
    try:
        daemon.wait_message("READY=1")
        wait_until(lambda: (_metric(port, failed) or 0.0) >= 3, timeout=60, what="three failed polls")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log_path.read_text()[-3000:]
    entries = _log(daemon)
    errors = [e for e in entries if e["level"] in ("error", "warning")]
    said = f"cannot write the state file {tmp_path / 'state.db'}: disk I/O error (free disk space or fix the file's folder)"
    messages = [e["msg"] for e in errors]
    assert len(messages) == len(set(messages)), messages  # each once
    assert set(messages) in (  # a drain may or may not have hit the limit too
        {f"source warehouse not read: {said}"},
        {f"source warehouse not read: {said}", f"delivery interrupted, orders stay queued: {said}"},
    ), [m[:300] for m in messages]
    assert not any("exc" in e for e in entries), "a traceback was logged"
    assert "Background on this error" not in json.dumps(ready), ready


def _cli_sync(config: Path) -> bool:
    from tests.conftest import cli

    return cli(config, "sync").returncode == 0
