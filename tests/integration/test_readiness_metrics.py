"""What ``/readyz`` and ``/metrics`` report about delivery, driven in-process against the real sandbox with an
injected readiness clock: no sleeps, no timing races."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.sandbox.faults import error
from tests.conftest import SLUG, order_rows, write_config, write_orders


class Clock:
    """The readiness clock, moved by the test."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def setup(tmp_path: Path, sandbox) -> Iterator:  # type: ignore[no-untyped-def]
    """An in-process daemon (retries do not sleep) whose readiness allows 600 s of failure, on ``clock``."""
    from connector.app import Connector
    from connector.daemon import Daemon
    from connector.readiness import Readiness
    from connector.settings import load_settings

    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 2, "bulk_max_orders": 1})
    connector = Connector(load_settings(config), sleep=lambda _: None)
    daemon = Daemon(connector)
    clock = Clock()
    daemon.readiness = Readiness(connector, 600, clock=clock)
    try:
        yield daemon, clock, connector.sources["warehouse"]
    finally:
        sandbox.heal()
        sandbox.faults.error_rate = 0.0
        sandbox.faults.down = False
        connector.close()


def _metric(daemon, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    value = daemon.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


def test_a_drain_that_sends_nothing_does_not_restart_the_karla_failure_clock(setup, sandbox, tmp_path: Path) -> None:
    """Karla down for good: drains that skip every order (its source is being read) must not hide the outage."""
    daemon, clock, rt = setup
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    sandbox.faults.down = True  # reads too: a suspect's lone failure is not taken for the order's fault
    daemon._sync_job(rt, False)  # reads, then delivers: 503 until the retries run out
    assert len(sandbox.requests) == 2 and daemon.readiness.check()[0] is True  # within the allowance

    before = len(sandbox.requests)
    daemon._reading.add(rt.name)  # a poll overlaps the next drain: the order waits, nothing is sent
    clock.t += 300
    daemon._deliver_job()
    daemon._reading.discard(rt.name)
    assert len(sandbox.requests) == before
    clock.t += 100
    daemon._deliver_job()  # still 503
    clock.t += 201  # 601 s after the first failure; only 201 s after the last one
    ready, body = daemon.readiness.check()
    assert ready is False and "failing for 601s" in body["problems"]["karla"], body

    sandbox.faults.down = False
    daemon._deliver_job()  # Karla answers: ready again
    assert daemon.readiness.check()[0] is True and set(sandbox.orders(SLUG)) == {"1"}


def test_an_empty_drain_while_healthy_stays_ready(setup, sandbox) -> None:
    daemon, clock, _ = setup
    daemon._deliver_job()
    clock.t += 10_000
    assert not sandbox.requests and daemon.readiness.check() == (True, {"problems": {}})


def test_revoked_credentials_make_the_daemon_unready_at_once(setup, sandbox, tmp_path: Path) -> None:
    """A 401 is no outage to wait out; a drain with nothing to send keeps it, one Karla accepts clears it."""
    daemon, clock, rt = setup
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    sandbox.fail_next(401, count=100, body=error("invalid_merchant_or_key", "Invalid merchant or key"))
    daemon._sync_job(rt, False)
    ready, body = daemon.readiness.check()
    assert ready is False and "needs a human" in body["problems"]["karla"], body
    later = [daemon.connector.now()]

    def an_hour_on() -> None:  # after a fatal answer, a drain tries again an hour later
        later[0] += 3601
        daemon.connector.now = lambda: later[0]  # type: ignore[method-assign]

    an_hour_on()
    daemon._reading.add(rt.name)
    daemon._deliver_job()  # nothing sent: says nothing about the key
    daemon._reading.discard(rt.name)
    sandbox.heal()
    sandbox.faults.down = True
    an_hour_on()
    daemon._deliver_job()  # an outage after the 401 says nothing about the key either
    clock.t += 10_000
    assert "needs a human" in daemon.readiness.check()[1]["problems"]["karla"]
    assert sandbox.orders(SLUG) == {}

    sandbox.faults.down = False
    an_hour_on()
    daemon._deliver_job()  # the key works again (re-activated in Karla)
    assert daemon.readiness.check()[0] is True and set(sandbox.orders(SLUG)) == {"1"}


def test_a_drain_stopped_by_a_fatal_answer_counts_what_karla_accepted_before(setup, sandbox, tmp_path: Path) -> None:
    daemon, _, rt = setup
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2, 3])
    sandbox.refuse_order("3", 403, "insufficient_rights", "key may not write this order")  # one order per batch
    daemon._sync_job(rt, False)
    assert set(sandbox.orders(SLUG)) == {"1", "2"}
    assert _metric(daemon, "karla_connector_orders_delivered_total") == 2.0
    assert daemon.readiness.check()[0] is False


def test_a_record_rejected_on_every_full_sync_is_one_dead_letter(setup, tmp_path: Path) -> None:
    """A full sync reads a still-broken row again: the store refreshes its letter, the metric adds nothing."""
    from state import DeadLetters

    daemon, _, rt = setup
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [1])
    path = files / "orders_001.csv"
    path.write_text(path.read_text() + "\n".join(order_rows(2, zip_code="")) + "\n")
    for _ in range(3):
        daemon._sync_job(rt, True)
    with daemon.connector.db.read() as conn:
        assert DeadLetters(conn).count() == 1
    assert _metric(daemon, "karla_connector_dead_letters_total", source="warehouse") == 1.0


def test_a_retry_after_beyond_the_retries_keeps_the_daemon_from_calling_karla_until_it_passes(setup, sandbox, tmp_path: Path) -> None:
    # Karla rate-limited for an hour: each drain (every 30 s) still sent a request into the 429.
    daemon, _, rt = setup
    now = [1_000_000.0]
    daemon.connector.now = lambda: now[0]  # type: ignore[method-assign]
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    sandbox.fail_next(429, retry_after=3600)
    daemon._sync_job(rt, False)
    assert [r.status for r in sandbox.requests] == [429]  # gave up at once: the pause is beyond the retry budget
    now[0] += 1800
    daemon._deliver_job()
    assert len(sandbox.requests) == 1  # still within Karla's hour
    now[0] += 1801
    daemon._deliver_job()
    assert [r.status for r in sandbox.requests] == [429, 200] and set(sandbox.orders(SLUG)) == {"1"}


def test_the_nightly_full_sync_of_files_that_repeat_orders_sends_nothing(setup, sandbox, tmp_path: Path) -> None:
    # The daemon's drains skip sources being read (groups=...), and the drop of stale queued versions was
    # tied to whole drains: the nightly full sync re-sent every order found in more than one file.
    daemon, _, rt = setup
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", range(1, 11), zip_code="11111")  # an older version of each order
    write_orders(files, "orders_002.csv", range(1, 11), zip_code="22222")  # the newest
    daemon._sync_job(rt, False)
    assert daemon.connector.status()["pending"] == 0 and sandbox.orders(SLUG)["1"]["address"]["zip_code"] == "22222"
    sandbox.reset_log()
    daemon._sync_job(rt, True)  # the nightly full sync
    assert sandbox.requests == [] and daemon.connector.status()["pending"] == 0


def test_karla_failing_every_write_while_searches_answer_makes_the_daemon_unready(setup, sandbox, tmp_path: Path) -> None:
    # Suspects tried alone get a 500 while a search answers: each is postponed. Taking that for "Karla is up"
    # kept /readyz green for hours while Karla accepted no order at all (found by review).
    daemon, clock, rt = setup
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    sandbox.faults.error_rate, sandbox.faults.error_statuses = 1.0, (500,)  # writes fail, reads answer
    daemon._sync_job(rt, False)  # the batch gives up on a 500: an outage, as far as one can tell
    for _ in range(4):
        clock.t += 200
        daemon._deliver_job()  # suspects alone: 500; a search answers; postponed
    ready, body = daemon.readiness.check()
    assert ready is False and "500" in body["problems"]["karla"], body
    assert daemon.connector.status()["waiting"]["count"] == 2
    sandbox.faults.error_rate = 0.0
    write_orders(tmp_path / "files", "orders_002.csv", [3])
    daemon._sync_job(rt, False)  # a new order accepted: Karla is up again
    assert daemon.readiness.check()[0] is True


def test_a_drain_that_waited_for_the_lock_while_stopping_does_not_start(setup, sandbox, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    # At shutdown a second drain waited for the first; then it started with an aborted client and logged
    # "0 orders delivered", right after the first had delivered 50.
    import logging
    import threading

    daemon, _, rt = setup
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    daemon.connector.sync_one(rt)  # queued, not delivered

    class StopsWhileWaited:
        """The lock, taken after a SIGTERM arrived while this drain waited for it."""

        def __init__(self) -> None:
            self.lock = threading.Lock()

        def __enter__(self) -> None:
            self.lock.acquire()
            daemon.stopping.set()

        def __exit__(self, *exc: object) -> None:
            self.lock.release()

    daemon._deliver_lock = StopsWhileWaited()
    with caplog.at_level(logging.INFO):
        daemon._deliver_job()
    assert sandbox.requests == [] and "delivery stopped on request" not in caplog.text
    assert daemon.connector.status()["pending"] == 1  # it goes with the next start
