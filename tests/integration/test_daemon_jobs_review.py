"""The daemon's jobs driven in-process on injected clocks: a refused key, a pool of threads too small for the
jobs, and how long an overrunning job is said to have run. Found by review (ops5, time5)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobEvent, JobSubmissionEvent

from connector.app import Connector
from connector.apscheduler_fixes import Overlaps
from connector.daemon import Daemon
from connector.delivery import DeliveryResult
from connector.engine import RunCounts
from connector.sandbox.faults import error
from connector.settings import load_settings
from tests.conftest import SLUG, write_config, write_orders


def test_a_refused_key_is_an_error_once_and_tried_again_hourly(tmp_path: Path, sandbox, caplog: pytest.LogCaptureFixture) -> None:
    """Each drain (every 30 s) sent another request with the refused key and logged the same long ERROR
    claiming "delivery stopped": ~2,880 a day. /readyz keeps saying it all along."""
    config = write_config(tmp_path, sandbox.url)
    connector = Connector(load_settings(config), sleep=lambda _: None)
    now = [1_000_000.0]
    connector.now = lambda: now[0]  # type: ignore[method-assign]
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    connector.sync_one(connector.sources["warehouse"])
    daemon = Daemon(connector)
    sandbox.fail_next(401, count=100, body=error("invalid_merchant_or_key", "Invalid merchant or key"))
    try:
        with caplog.at_level(logging.DEBUG, logger="connector.daemon"):
            for _ in range(10):  # five minutes of drains
                daemon._deliver_job()
                now[0] += 30
            assert len(sandbox.requests) == 1
            now[0] += 3600
            daemon._deliver_job()  # an hour later: tried again (a key re-activated in Karla would work now)
            assert [r.status for r in sandbox.requests] == [401, 401]
            ready, body = daemon.readiness.check()
            assert ready is False and "needs a human" in body["problems"]["karla"], body
            sandbox.heal()
            now[0] += 3601
            daemon._deliver_job()
        said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "connector.daemon"]
        stopped = [level for level, message in said if message.startswith("delivery stopped")]
        assert stopped == ["ERROR", "DEBUG"], said
        assert "tried again hourly" in said[0][1] and "restarted" in said[0][1]
        assert said[-1] == ("INFO", "delivery resumed: Karla answers again")
        assert set(sandbox.orders(SLUG)) == {"1"} and daemon.readiness.check()[0] is True
    finally:
        connector.close()


def test_every_job_has_a_thread_so_long_reads_do_not_starve_delivery(tmp_path: Path, sandbox) -> None:
    """APScheduler's ten threads: eleven sources reading at length took them all, and the delivery timer never
    ran (its waiting turn even counted as running and was later dropped as missed)."""
    extra = "".join(f'[sources.s{i}]\ntype = "csv"\nurl = "file://{tmp_path / "files"}"\n' for i in range(10))
    config = write_config(tmp_path, sandbox.url, extra=extra + "[daemon]\ndelivery_interval = 0.2\n")
    connector = Connector(load_settings(config), sleep=lambda _: None)
    assert len(connector.selected(None)) == 11
    daemon = Daemon(connector)
    release, reading, drained = threading.Event(), threading.Semaphore(0), threading.Event()

    def long_read(rt: object, **_: object) -> RunCounts:  # a first read of a big backlog, on every source at once
        reading.release()
        release.wait(30)
        return RunCounts()

    connector.sync_one = long_read  # type: ignore[method-assign]
    connector.deliver = lambda **_: (drained.set(), DeliveryResult())[1]  # type: ignore[method-assign]
    daemon._schedule()
    daemon.scheduler.start()
    try:
        for _ in range(11):
            assert reading.acquire(timeout=10), "not every source is being read"
        assert drained.wait(10), "the delivery timer never ran while the sources read"
    finally:
        release.set()
        daemon.scheduler.shutdown(wait=True)
        connector.close()


def test_a_nightly_full_sync_held_up_for_hours_still_runs(tmp_path: Path, sandbox) -> None:
    """Queued behind a poll of its source longer than 300 s (APScheduler's misfire grace), the nightly full
    sync was dropped as missed until the next night."""
    config = write_config(tmp_path, sandbox.url, source={"full_sync_cron": "30 2 * * *"})
    connector = Connector(load_settings(config))
    daemon = Daemon(connector)
    daemon._schedule()
    daemon.scheduler.start(paused=True)  # jobs get the scheduler's defaults as it starts; paused, none runs
    try:
        full = daemon.scheduler.get_job("full:warehouse")
        assert full.misfire_grace_time is None and full.coalesce is True  # late, it runs once
        assert daemon.scheduler.get_job("sync:warehouse").misfire_grace_time == 300  # a poll comes round soon anyway
    finally:
        daemon.scheduler.shutdown(wait=False)
        connector.close()


def test_an_overrun_is_told_from_when_the_job_started(tmp_path: Path, sandbox, caplog: pytest.LogCaptureFixture) -> None:
    """A poll every hour, started at 0, first skipped at 3600: at 7200 it was said to run "for 60 minutes"."""
    config = write_config(tmp_path, sandbox.url, source={"poll_interval": 3600})
    connector = Connector(load_settings(config))
    t = [0.0]
    connector.now = lambda: t[0]  # type: ignore[method-assign]
    daemon = Daemon(connector)
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    try:
        with caplog.at_level(logging.WARNING, logger="connector.daemon"):
            daemon._on_job_event(JobSubmissionEvent(EVENT_JOB_SUBMITTED, "sync:warehouse", None, [at]))
            for t[0] in (3600.0, 7200.0):
                daemon._on_job_event(JobEvent(EVENT_JOB_MAX_INSTANCES, "sync:warehouse", None))
        said = [r.getMessage() for r in caplog.records if "has been running" in r.getMessage()]
        assert len(said) == 1 and said[0].startswith("job sync:warehouse has been running for 120 minutes"), said
    finally:
        connector.close()


def test_overlaps_count_from_the_start() -> None:
    t = [0.0]
    overlaps = Overlaps(1800.0, lambda: t[0])
    overlaps.started("sync:w")
    t[0] = 3600
    assert overlaps.skipped("sync:w") is None  # the first skipped turn: normal for a while
    t[0] = 7200
    assert overlaps.skipped("sync:w") == 7200.0
    t[0] = 10800
    assert overlaps.skipped("sync:w") is None  # said once per episode
