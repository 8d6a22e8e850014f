"""``karla-connector run``: the long-running service.

APScheduler 3.x runs one incremental job per source on its ``poll_interval``, an optional nightly full
sync per source on ``full_sync_cron``, and a delivery job draining the outbox. The main thread only waits,
pings the systemd watchdog and handles signals: SIGTERM/SIGINT/SIGHUP stop scheduling and let the page or
batch in flight finish (bounded by ``shutdown_grace_seconds``); a second signal exits at once, which still
loses nothing because every committed page is in the outbox.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import DatabaseError

from connector.app import Connector
from connector.apscheduler_fixes import Overlaps, QuietOverlap, cron_trigger
from connector.commands import NO_SOURCES, lacks_sources
from connector.daemon_exit import exit_holding_lock
from connector.daemon_start import log_started, warn_short_grace
from connector.delivery import DeliveryResult
from connector.engine import RunCounts, SourceRuntime
from connector.errors import ConfigError, FatalError, ShopRefused, Unavailable
from connector.going_live import judge_opened
from connector.health import HealthServer, listen_error
from connector.job_errors import DELIVERY_STOPPED, Episodes, is_state_trouble, read_again, state_message, sync_failure
from connector.logs import redact
from connector.metrics import Metrics
from connector.readiness import Readiness
from connector.refused_shops import FATAL_RETRY_SECONDS, RefusedShops
from connector.sdnotify import Notifier, watchdog_interval
from state.lock import StateLock

__all__ = ["FATAL_RETRY_SECONDS", "Daemon", "cron_trigger"]

log = logging.getLogger("connector.daemon")
OVERRUN_WARNING_SECONDS = 1800.0  # a job still running this long after its next turn came round is worth a warning


class Daemon:
    def __init__(self, connector: Connector, *, notifier: Notifier | None = None) -> None:
        self.connector = connector
        self.settings = connector.settings
        self.metrics = Metrics()
        connector._on_request = self._on_request  # count every Karla request, whichever job made it
        self.notifier = notifier or Notifier()
        self.stopping = threading.Event()
        self.readiness = Readiness(connector, self.settings.daemon.ready_max_failure_seconds)
        for name, error in connector.broken.items():  # never polled: not ready until the plugin loads (a restart)
            self.readiness.fatal(name, redact(error))
        self._episodes = Episodes(log)  # failures said once while they last (a full disk, a refused key)
        self._shops = RefusedShops(self._episodes, connector.now, log)  # only their orders wait
        self._source_locks = {name: threading.Lock() for name in connector.sources}
        # Sources being read right now. The delivery job leaves their orders alone: a CSV source queues the
        # parcels before the orders, and a parcel sent ahead of its new order only comes back order_not_found.
        self._reading: set[str] = set()
        self._retries_seen = 0
        self._deliver_lock = threading.Lock()  # one drain at a time (the timer's, and a sync's run without a scheduler)
        self._overlaps = Overlaps(OVERRUN_WARNING_SECONDS, connector.now)
        self._karla_not_before = 0.0  # connector.now() before which no drain starts (Karla's Retry-After)
        self._paused = False  # a drain ended with Karla unavailable, and none has been answered since
        self.started = connector.now()  # lag of a source that has not succeeded yet counts from here
        self.scheduler = BackgroundScheduler(
            timezone=self.settings.daemon.timezone,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 300},
        )

    def _on_request(self, endpoint: str, status: int) -> None:
        self.metrics.on_request(endpoint, status)

    # -- jobs ----------------------------------------------------------------------------------------
    def _sync_job(self, rt: SourceRuntime, full: bool) -> None:
        """Incremental and full syncs of one source share a lock: they never overlap."""
        if self.stopping.is_set() or (not full and self._source_locks[rt.name].locked()):
            return  # a poll while the source's full sync reads: that covers it (a full sync waits for a poll)
        queued: list[int] = []  # what each committed page queued: a run that fails later still queued them
        with self._source_locks[rt.name]:
            self._reading.add(rt.name)
            try:
                counts = self.connector.sync_one(rt, full=full, on_page=self._page_counter(rt.name, queued),
                                                 stop=self.stopping.is_set)
            except Exception as exc:  # noqa: BLE001 - whatever it is, one failing source must not stop the others
                failed: Exception | None = exc
            else:
                failed = None
            finally:
                self._reading.discard(rt.name)
        if failed is not None:
            self._sync_failed(rt.name, failed)
            if any(queued):  # the pages before the failure (a CSV file it could not open) go now, not at the timer
                self._wake_delivery()
            return
        self.readiness.succeeded(rt.name)
        if said := read_again(self._episodes, rt.name):  # its failure was said once: say it passed
            log.info("%s", said, extra={"source": rt.name})
        self.metrics.runs.labels(source=rt.name, status="ok").inc()  # its last success: from the state file (refresh)
        if counts.enqueued:
            self._wake_delivery()

    def _sync_failed(self, name: str, exc: Exception) -> None:
        failure = sync_failure(name, exc, self.settings.state.path)
        self.readiness.failed(name, failure.reason)  # /readyz shows it once it lasts (an unmounted share may pass)
        self.metrics.runs.labels(source=name, status=failure.status).inc()
        self._episodes.tell(failure.episode, logging.ERROR, failure.message, exc_info=exc if failure.traceback else None,
                            extra={"source": name})  # once while it lasts, at DEBUG after that (each poll)

    def _wake_delivery(self) -> None:
        """New orders queued: the delivery job sends them now, on its own thread. Drained here, a Karla outage
        held the poll for minutes of retries, and the source went unread meanwhile (its lag blamed on it)."""
        if self.scheduler.running:
            self.scheduler.modify_job("deliver", next_run_time=_now_tz(self))
        else:  # the job run by hand, without a scheduler
            self._deliver_job()

    def _page_counter(self, source: str, queued: list[int]) -> Callable[[RunCounts], None]:
        """Counts each committed page's new dead letters as it commits, so a run that fails later still counts
        them; a record rejected again (a full sync, a file re-read) refreshes its letter and adds nothing.
        ``queued`` gets each page's queued parts."""
        def on_page(counts: RunCounts) -> None:
            queued.append(counts.enqueued)
            if counts.new_letters:
                self.metrics.dead.labels(source=source).inc(counts.new_letters)

        return on_page

    def _deliver_job(self) -> None:
        if self.stopping.is_set() or self.connector.now() < self._karla_not_before:
            return  # Karla asked to be left alone until then (a Retry-After beyond one drain's retries)
        result: DeliveryResult | None
        with self._deliver_lock:
            if self.stopping.is_set():  # waited for the lock while another drain stopped: nothing to say
                return
            refused: dict[str, ShopRefused] = {}
            try:
                # the live set: a source whose read starts during a long drain is left alone from then on
                result = self.connector.deliver(stop=self.stopping.is_set, skip_sources=self._reading,
                                                skip_shops=self._shops.waiting())
            except ShopRefused as exc:  # only that shop's orders wait (RefusedShops); the others' went
                result, refused = getattr(exc, "result", None), {exc.slug: exc, **getattr(exc, "refused_shops", {})}
                self._answered(result)
            except Unavailable as exc:
                result, refused = getattr(exc, "result", None), getattr(exc, "refused_shops", {})
                self.readiness.failed("karla", redact(str(exc)))  # not ready once it lasts ready_max_failure_seconds
                pause = min(exc.retry_after or 0.0, 3600.0)  # Karla's Retry-After; a proxy may ask for a day
                self._karla_not_before = self.connector.now() + pause
                # said once per outage at WARNING (each drain tried again said it again; /readyz tells the rest)
                log.log(logging.INFO if self._paused else logging.WARNING, "delivery paused%s: %s",
                        f" for {pause:.0f} s, as Karla asked" if pause else "", exc)
                self._paused = True
            except FatalError as exc:  # a refused key, a 501: no retry fixes it, so not ready at once
                # batches Karla answered before it said so still count
                result, refused = getattr(exc, "result", None), getattr(exc, "refused_shops", {})
                self.readiness.fatal("karla", redact(str(exc)))
                self._karla_not_before = self.connector.now() + FATAL_RETRY_SECONDS
                self._episodes.say("karla", logging.ERROR, "delivery stopped: %s. %s", exc, DELIVERY_STOPPED)
            except DatabaseError as exc:
                if not is_state_trouble(exc):
                    raise
                result, message = None, state_message(self.settings.state.path, exc)  # a full disk: said once
                self.readiness.failed("state", redact(message))
                self._episodes.say("state:deliver", logging.ERROR, "delivery interrupted, orders stay queued: %s", message)
            else:
                self._answered(result)
            if result is not None:
                self._shops.answered(result.answered_by_shop, self.readiness)
            self._shops.refused(refused, self.readiness)
        if result is not None:
            self.metrics.count_delivery(result.orders, result.trackings, result.dead_by_source)
        retries = self.connector.client.stats.retries
        self.metrics.retries.inc(retries - self._retries_seen)
        self._retries_seen = retries

    def _answered(self, result: DeliveryResult | None) -> None:
        """Only an answer from Karla clears a failure: a drain that sent nothing (nothing due, or all of it from
        a source being read) says nothing about Karla, and must not restart the failure clock. Nor does a drain
        that only postponed suspects (a search answered, but no write was accepted: Karla's write path may be
        what fails) or only heard a shop refused; new orders accepted clear it."""
        if result is None or not any(result.answered_by_shop.values()):
            return
        self.readiness.succeeded("karla")
        if self._episodes.over("karla") | self._paused:
            log.info("delivery resumed: Karla answers again")
        self._paused = False
        if self._episodes.over("state:deliver"):  # an answer recorded: it writes
            self.readiness.succeeded("state")
            log.info("delivery resumed: the state file takes writes again")

    def _schedule(self) -> None:
        jobs = 1
        for rt in self.connector.selected(None):
            self.scheduler.add_job(self._sync_job, "interval", seconds=rt.config.poll_interval, args=(rt, False),
                                   id=f"sync:{rt.name}", name=f"sync {rt.name}", next_run_time=_now_tz(self))
            jobs += 1
            if rt.config.full_sync_cron:
                # run however late (a poll of the source held its lock for hours): one missed is a day without
                trigger = cron_trigger(rt.config.full_sync_cron, self.settings.daemon.timezone)
                self.scheduler.add_job(self._sync_job, trigger, args=(rt, True), id=f"full:{rt.name}",
                                       name=f"full sync {rt.name}", misfire_grace_time=None)
                jobs += 1
        self.scheduler.add_job(self._deliver_job, "interval", seconds=self.settings.daemon.delivery_interval,
                               id="deliver", name="deliver")
        # A thread per job (each runs one at a time): with APScheduler's 10, ten long reads starved delivery
        # and the full syncs, whose turns then counted as running, and were dropped as missed.
        self.scheduler.add_executor(ThreadPoolExecutor(max_workers=jobs), "default")
        events = EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_EXECUTED | EVENT_JOB_SUBMITTED
        self.scheduler.add_listener(self._on_job_event, events)
        scheduler_log = logging.getLogger("apscheduler.scheduler")
        if not any(isinstance(f, QuietOverlap) for f in scheduler_log.filters):
            scheduler_log.addFilter(QuietOverlap())

    def _on_job_event(self, event: JobEvent) -> None:
        self._overlaps.on_event(event, log)

    def _warn_short_grace(self) -> None:
        warn_short_grace(self.connector)

    # -- main loop -----------------------------------------------------------------------------------
    def run(self) -> int:
        if lacks_sources(self.connector):  # as `sync` and `check`: idling "ready" would hide the mistake
            raise ConfigError(NO_SOURCES)
        with StateLock(self.settings.state.path, "run"):
            self.started = self.connector.now()
            judge_opened(self.settings, self.connector.db)  # opened (migrated) before ready; a sandbox's: refused
            self.metrics.start(self._source_names())  # counters at 0 from the start: increase() sees the first
            self.readiness.resume()  # failure clocks go on from failures open at the last stop
            health = self._start_health()
            self._install_signals()
            self._schedule()
            self.scheduler.start()
            self.notifier.ready()
            log_started(self.connector)
            self._warn_short_grace()
            interval = watchdog_interval() or 5.0
            while not self.stopping.wait(min(interval, 5.0)):
                self.notifier.watchdog()
                self._refresh_gauges()
            self.notifier.stopping()
            log.info("shutting down: letting work in flight finish (up to %ss)", self.settings.daemon.shutdown_grace_seconds)
            finished = self._shutdown()
            if health:
                health.stop()
            if not finished:
                exit_holding_lock()
            self.connector.close()
        log.info("daemon stopped")
        return 0

    def _shutdown(self) -> bool:
        """Stop the scheduler, waiting for the jobs in flight up to the grace period; True if they ended."""
        self.scheduler.pause()
        done = threading.Event()
        threading.Thread(target=lambda: (self.scheduler.shutdown(wait=True), done.set()), daemon=True).start()
        return done.wait(self.settings.daemon.shutdown_grace_seconds)

    def _start_health(self) -> HealthServer | None:
        d = self.settings.daemon
        if not d.health_port:
            return None
        try:
            server = HealthServer(d.health_host, d.health_port, self.readiness.check, self._metrics_text)
        except OSError as exc:  # port in use, address not on this host, name that does not resolve
            raise listen_error(d.health_host, d.health_port, exc) from None
        return server.start()

    def _metrics_text(self) -> bytes:
        self._refresh_gauges()
        return self.metrics.render()

    def _refresh_gauges(self) -> None:
        try:
            snapshot = self.readiness.snapshot()
        except Exception:  # noqa: BLE001 - metrics must never take the daemon down
            return
        names = self._source_names()
        self.metrics.refresh(snapshot["pending"], snapshot["last_ok"], names, self.connector.now(), self.started)

    def _source_names(self) -> list[str]:
        """The sources with metrics series: those polled, and those whose plugin failed to load."""
        return [rt.name for rt in self.connector.selected(None)] + list(self.connector.broken)

    def _install_signals(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            if self.stopping.is_set():
                log.warning("second signal: exiting now; pending work stays queued")
                os._exit(130)
            log.info("received %s", signal.Signals(signum).name)
            self.stopping.set()
            self.connector.abort()  # a retry waiting out a Karla outage must not outlast the grace period

        # SIGHUP too (a closed terminal, `kill -HUP`): the configuration is read only at start, so there is
        # nothing to reload; dying of it uncleanly would skip the grace period, and systemd does not restart
        # a service killed by SIGHUP either. Restart the service to apply a changed configuration.
        # Not when SIGHUP is ignored already (`nohup karla-connector run &`): it must outlive the session.
        hup = [signal.SIGHUP] if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN else []
        for signum in (signal.SIGTERM, signal.SIGINT, *hup):
            signal.signal(signum, handler)


def _now_tz(daemon: Daemon) -> datetime:
    return datetime.now(ZoneInfo(daemon.settings.daemon.timezone))
