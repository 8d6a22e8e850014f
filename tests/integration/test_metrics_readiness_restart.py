"""What the alert signals say across a restart of `run` (ops8 review): the last success, counters at 0, the
readiness failure clock of a source (and of Karla) still broken; and a Karla nobody answers in the request counts."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import SLUG, cli, write_config, write_orders
from tests.integration.test_daemon import Daemon, free_port, wait_until

RUNS = "karla_connector_sync_runs_total"


def _config(tmp_path: Path, url: str, port: int, **karla: object) -> Path:
    return write_config(tmp_path, url, source={"poll_interval": 0.3}, karla=karla or None,
                        extra=f"[daemon]\nhealth_port = {port}\ndelivery_interval = 0.3\nshutdown_grace_seconds = 10\n")


def _metrics(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics").text


def test_a_source_still_broken_after_a_restart_keeps_its_last_success_and_zeroed_counters(tmp_path: Path, sandbox) -> None:
    port = free_port()
    config = _config(tmp_path, sandbox.url, port)
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    first = Daemon(config, tmp_path)
    first.wait_message("READY=1")
    assert sandbox.wait_for(lambda sb: "1" in sb.orders(SLUG))
    assert first.stop() == 0
    shutil.rmtree(tmp_path / "files")  # the export share is gone; the daemon restarts (deploy, reboot, watchdog)
    (tmp_path / "notify.sock").unlink()
    second = Daemon(config, tmp_path)
    try:
        second.wait_message("READY=1")
        wait_until(lambda: f'{RUNS}{{source="warehouse",status="fatal"}} 1.0' in _metrics(port), what="a failed poll")
        metrics = _metrics(port)
        # the usual alert, time() - last_success_timestamp > X, has a series to fire on
        assert 'karla_connector_source_last_success_timestamp_seconds{source="warehouse"}' in metrics, metrics
        # counters a restart would otherwise start at their first increment, which increase() never sees
        assert 'karla_connector_dead_letters_total{source="warehouse"} 0.0' in metrics, metrics
        assert f'{RUNS}{{source="warehouse",status="ok"}} 0.0' in metrics
        assert f'{RUNS}{{source="warehouse",status="failed"}} 0.0' in metrics
    finally:
        second.stop()


def test_readyz_counts_a_source_failure_from_before_the_restart(tmp_path: Path, sandbox) -> None:
    port = free_port()
    config = _config(tmp_path, sandbox.url, port)
    shutil.rmtree(tmp_path / "files")
    assert cli(config, "sync").returncode != 0  # the failure starts (here by `sync`; a daemon's poll the same)
    with sqlite3.connect(tmp_path / "state.db") as conn:  # ... two hours ago (default allowance: one hour)
        conn.execute("UPDATE run SET started_at = started_at - 7200, finished_at = finished_at - 7200")
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        wait_until(lambda: f'{RUNS}{{source="warehouse",status="fatal"}} 1.0' in _metrics(port), what="a failed poll")
        body = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
        assert body["ready"] is False and "failing for 72" in body["problems"]["warehouse"], body
    finally:
        daemon.stop()


class Clock:
    """Both clocks, moved by the test: the wall clock of the state file's runs, the readiness clock."""

    def __init__(self) -> None:
        self.wall, self.mono = 1_800_000_000.0, 1000.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.wall, UTC)


@pytest.fixture()
def restart(tmp_path: Path, sandbox) -> Iterator:  # type: ignore[no-untyped-def]
    """``start()``: an in-process daemon on the state file, on ``clock`` (readiness allows 600 s of failure),
    with its failures open at the last stop resumed as `run` does; the one before it closed."""
    from connector.app import Connector
    from connector.daemon import Daemon as InProcess
    from connector.readiness import Readiness
    from connector.settings import load_settings

    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 1})
    clock, opened = Clock(), []

    def start() -> InProcess:
        if opened:
            opened[-1].close()
        connector = Connector(load_settings(config), clock=clock.now, sleep=lambda _: None)
        opened.append(connector)
        daemon = InProcess(connector)
        daemon.readiness = Readiness(connector, 600, clock=lambda: clock.mono)
        daemon.readiness.resume()
        return daemon

    try:
        yield start, clock
    finally:
        sandbox.faults.down = False
        if opened:
            opened[-1].close()


def test_karla_down_across_a_restart_keeps_its_failure_clock(restart, sandbox, tmp_path: Path) -> None:
    start, clock = restart
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    sandbox.faults.down = True
    daemon = start()
    daemon._sync_job(daemon.connector.sources["warehouse"], False)  # reads, then the drain fails
    clock.wall += 500
    daemon = start()  # restarted 500 s into the outage, on a new readiness clock
    assert daemon.readiness.check()[0] is True  # nothing failed yet in this process: no verdict on old news
    daemon._deliver_job()
    clock.mono += 99
    assert daemon.readiness.check()[0] is True
    clock.mono += 2
    ready, body = daemon.readiness.check()
    assert ready is False and "failing for 601s" in body["problems"]["karla"], body


def test_a_source_that_read_again_before_the_restart_starts_a_new_failure_clock(restart, tmp_path: Path) -> None:
    start, clock = restart
    files = tmp_path / "files"
    daemon = start()
    rt = daemon.connector.sources["warehouse"]
    shutil.rmtree(files)
    daemon._sync_job(rt, False)  # fails
    clock.wall += 500
    files.mkdir()
    daemon._sync_job(rt, False)  # reads again: that failure is over
    clock.wall += 500
    daemon = start()
    shutil.rmtree(files)
    daemon._sync_job(daemon.connector.sources["warehouse"], False)  # a new failure
    clock.mono += 599
    assert daemon.readiness.check()[0] is True


def test_a_karla_that_never_answers_shows_in_the_request_counts(tmp_path: Path) -> None:
    from connector.app import Connector
    from connector.daemon import Daemon as InProcess
    from connector.settings import load_settings

    config = _config(tmp_path, f"http://127.0.0.1:{free_port()}", 0, retry_attempts=2)  # nothing listens there
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    connector = Connector(load_settings(config), sleep=lambda _: None)
    daemon = InProcess(connector)
    try:
        daemon._sync_job(connector.sources["warehouse"], False)  # reads, then the drain is refused twice
        samples = [s for m in daemon.metrics.registry.collect() for s in m.samples
                   if s.name == "karla_connector_karla_requests_total"]
        assert sum(s.value for s in samples if s.labels["status"] == "error") == 2, samples
    finally:
        connector.close()
