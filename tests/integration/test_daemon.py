"""``karla-connector run`` as a real subprocess: readiness, polling, health, nightly job, shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SLUG, cli, write_config, write_orders


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    """Poll state another process writes (the daemon's SQLite file); sandbox conditions use ``wait_for``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Daemon:
    def __init__(self, config: Path, tmp_path: Path, **popen: Any) -> None:
        self.notify_path = tmp_path / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.notify_path))
        env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
        env.update(NOTIFY_SOCKET=str(self.notify_path), WATCHDOG_USEC="400000")
        self.log_path = tmp_path / "daemon.log"  # a file, not a pipe nobody reads: a full pipe would block the daemon
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "--config", str(config), "run"], stdout=self.log, stderr=subprocess.STDOUT, env=env,
            **popen,
        )
        self.messages: list[str] = []
        self.arrived = threading.Condition()
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        """Drain the notify socket continuously, as systemd does (a full queue would drop messages)."""
        while True:
            try:
                message = self.sock.recv(4096).decode()
            except OSError:
                return
            with self.arrived:
                self.messages.append(message)
                self.arrived.notify_all()

    def wait_message(self, wanted: str, timeout: float = 30) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: wanted in self.messages, timeout=timeout), f"no {wanted}: {self.messages[-5:]}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        with self.arrived:  # STOPPING=1 is sent before the process exits
            self.arrived.wait_for(lambda: "STOPPING=1" in self.messages, timeout=5)
        self.sock.close()
        self.log.close()
        return code


@pytest.fixture()
def daemon_setup(tmp_path: Path, sandbox) -> Iterator[tuple[Path, int]]:
    port = free_port()
    config = write_config(
        tmp_path, sandbox.url,
        source={"poll_interval": 0.3, "full_sync_cron": "*/1 * * * * *"},
        extra=f"[daemon]\nhealth_port = {port}\ndelivery_interval = 0.3\nshutdown_grace_seconds = 10\n",
    )
    yield config, port


def test_daemon_lifecycle(daemon_setup: tuple[Path, int], sandbox, tmp_path: Path) -> None:
    config, port = daemon_setup
    with config.open("a") as f:  # a second source that fails every poll must not hold up the first
        f.write(f'[sources.broken]\ntype = "csv"\nurl = "file://{tmp_path / "no-such-folder"}"\npoll_interval = 0.3\n')
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [1, 2])
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        assert sandbox.wait_for(lambda sb: set(sb.orders(SLUG)) == {"1", "2"}), "first orders not delivered"

        write_orders(files, "orders_002.csv", [3])  # picked up by the next poll
        assert sandbox.wait_for(lambda sb: "3" in sb.orders(SLUG), timeout=10), "new order not picked up"
        daemon.wait_message("WATCHDOG=1")

        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        metrics = httpx.get(f"{base}/metrics").text
        assert "karla_connector_orders_delivered_total 3.0" in metrics
        assert 'karla_connector_karla_requests_total{endpoint="bulk",status="200"}' in metrics
        assert "karla_connector_outbox_depth 0.0" in metrics
        assert 'karla_connector_source_last_success_timestamp_seconds{source="warehouse"}' in metrics

        second = cli(config, "run", timeout=60)
        assert second.returncode == 75 and "in use by pid" in second.stderr  # EX_TEMPFAIL: systemd restarts it

        # The per-second "nightly" job re-reads everything but sends only differences: nothing.
        before = len(sandbox.requests)
        status = cli(config, "status", "--json")
        wait_until(lambda: _full_runs(tmp_path) >= 2, timeout=15, what="two full syncs")
        assert len(sandbox.requests) == before, status.stdout

        # Drift: forget that Karla has order 2; the next full sync re-sends exactly that order.
        import sqlite3

        with sqlite3.connect(tmp_path / "state.db") as conn:
            conn.execute("DELETE FROM delivered WHERE order_key = '2'")
        sandbox.wait_for(lambda s: len(s.requests) > before, timeout=15)
        (request,) = sandbox.requests[before:]
        assert request.items == 1 and request.status == 200
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log_path.read_text()[-3000:]
    logs = daemon.log_path.read_text()
    assert '"source": "warehouse"' in logs and "test-key-5f2c9a1e" not in logs  # JSON lines with the source; no secret
    assert "source broken failed, needs a fix" in logs  # a failing source is logged by name and does not stop the others
    assert daemon.messages[0] == "READY=1" and daemon.messages[-1] == "STOPPING=1"
    assert set(daemon.messages[1:-1]) == {"WATCHDOG=1"}, daemon.messages


def _full_runs(tmp_path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "state.db")
    try:
        return int(conn.execute("SELECT COUNT(*) FROM run WHERE kind = 'full' AND status = 'ok'").fetchone()[0])
    finally:
        conn.close()


def test_sigterm_mid_sync_exits_0_with_consistent_state(daemon_setup: tuple[Path, int], sandbox, tmp_path: Path) -> None:
    config, _ = daemon_setup
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 301))
    sandbox.faults.delay = 0.05
    daemon = Daemon(config, tmp_path)
    daemon.wait_message("READY=1")
    assert sandbox.wait_for(lambda sb: len(sb.requests) >= 1), "delivery did not start"
    assert daemon.stop() == 0
    sandbox.faults.delay = 0.0
    assert daemon.messages[-1] == "STOPPING=1"
    result = cli(config, "sync")
    assert result.returncode == 0, result.stderr
    assert len(sandbox.orders(SLUG)) == 300


def test_karla_unreachable_for_too_long_makes_the_daemon_unready(tmp_path: Path, sandbox) -> None:
    """An outage is normal life for a while (retries, nothing lost); past ready_max_failure_seconds /readyz says so."""
    from connector.app import Connector
    from connector.daemon import Daemon as InProcess
    from connector.readiness import Readiness
    from connector.settings import load_settings

    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 2})
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    connector = Connector(load_settings(config), sleep=lambda _: None)
    daemon = InProcess(connector)
    now = [1000.0]
    daemon.readiness = Readiness(connector, 600, clock=lambda: now[0])
    rt = connector.sources["warehouse"]
    try:
        sandbox.faults.error_rate = 1.0
        daemon._sync_job(rt, False)  # reads, then delivers: Karla answers 503 until the retries run out
        assert daemon.readiness.check()[0] is True  # just failed: still within the allowance
        now[0] += 601
        ready, body = daemon.readiness.check()
        assert ready is False and "503" in body["problems"]["karla"]
        sandbox.faults.error_rate = 0.0
        daemon._deliver_job()
        assert daemon.readiness.check()[0] is True and set(sandbox.orders(SLUG)) == {"1", "2"}
    finally:
        sandbox.faults.error_rate = 0.0
        connector.close()


def test_sigterm_during_a_karla_outage_does_not_wait_out_the_retries(daemon_setup: tuple[Path, int], sandbox, tmp_path: Path) -> None:
    """Karla is down and asks for 30 s pauses: a stop cuts the wait short, exits 0 and keeps the order pending."""
    config, _ = daemon_setup
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    sandbox.fail_next(503, count=1000, retry_after=30)
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        assert sandbox.wait_for(lambda sb: any(r.status == 503 for r in sb.requests), timeout=20), "no delivery attempt"
        asked = time.monotonic()
    finally:
        code = daemon.stop()
    waited = time.monotonic() - asked
    assert code == 0, daemon.log_path.read_text()[-3000:]
    assert waited < 20, f"shutdown took {waited:.1f}s: the 30 s Retry-After was waited out"
    assert json.loads(cli(config, "status", "--json").stdout)["pending"] == 1


def test_dead_letters_from_karla_are_counted_under_their_source(tmp_path: Path, sandbox) -> None:
    from connector.app import Connector
    from connector.daemon import Daemon as InProcess
    from connector.settings import load_settings
    from tests.conftest import order_rows

    config = write_config(tmp_path, sandbox.url)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [1])
    (files / "orders_001.csv").write_text((files / "orders_001.csv").read_text() + "\n".join(order_rows(6, zip_code="ABCDE")) + "\n")
    connector = Connector(load_settings(config))
    daemon = InProcess(connector)
    try:
        daemon._sync_job(connector.sources["warehouse"], False)  # Karla refuses order 6 (invalid zip)
        metrics = daemon.metrics.render().decode()
        assert 'karla_connector_dead_letters_total{source="warehouse"} 1.0' in metrics, metrics
        assert 'source="karla"' not in metrics
    finally:
        connector.close()
