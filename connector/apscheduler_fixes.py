"""APScheduler 3 behaviour the daemon must not inherit: a nightly job run twice when the clocks go back,
and a warning on every interval while a long run is still going."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from connector.errors import ConfigError
from connector.schedule import cron_trigger as _parse_cron

__all__ = ["OncePerWallClock", "Overlaps", "QuietOverlap", "cron_trigger"]


class OncePerWallClock(BaseTrigger):
    """A cron trigger that fires once per local time, as cron does.

    On the night the clocks go back, APScheduler 3 fires "30 2 * * *" at 02:30 summer time and again an
    hour later at 02:30 winter time (its issue #1021): two nightly full syncs. A fire whose wall-clock time
    is not after the previous fire's is skipped (so "0,30 2 * * *" runs twice that night, not four times).
    A daemon restarted within the repeated hour has no previous fire to compare with.
    """

    def __init__(self, cron: CronTrigger) -> None:
        self.cron = cron

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire = self.cron.get_next_fire_time(previous_fire_time, now)
        while fire is not None and previous_fire_time is not None and _wall(fire) <= _wall(previous_fire_time):
            fire = self.cron.get_next_fire_time(fire, fire.astimezone(timezone.utc) + timedelta(seconds=1))
        return fire

    def __getattr__(self, name: str) -> object:
        """The cron's own attributes (``fields``, ``timezone``) as if this were the cron trigger itself."""
        if name == "cron":
            raise AttributeError(name)
        return getattr(self.cron, name)

    def __str__(self) -> str:
        return str(self.cron)


def _wall(moment: datetime) -> datetime:
    """The local time as a clock on the wall shows it (naive comparison ignores the UTC offset and fold)."""
    return moment.replace(tzinfo=None)


class QuietOverlap(logging.Filter):
    """APScheduler warns each time an interval comes round while the previous run still works (a long full
    sync or drain): normal here, and a warning every poll_interval buries real ones. ``Overlaps.on_event`` logs
    it at DEBUG instead; every other APScheduler message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in str(record.msg)


class Overlaps:
    """Turns of a job skipped because its previous run still works: normal for a while (a long full sync, a
    big drain), a sign of a request that never returns once it lasts. With the overlap warnings quiet, this
    says so once per episode: ``skipped`` returns how long the run has been going (since ``started``, not
    since the first skipped turn, which came a whole interval later), once, after its turns have been
    skipped for ``limit`` seconds; ``ended`` starts over when the job has finished."""

    def __init__(self, limit: float, clock: Callable[[], float]) -> None:
        self.limit, self.clock = limit, clock
        self._started: dict[str, float] = {}
        self._skipped_since: dict[str, float] = {}
        self._told: set[str] = set()

    def started(self, job_id: str) -> None:
        """Each run, as it is handed to a worker; kept past ``ended`` (the previous run's end may be told
        after the next run started)."""
        self._started[job_id] = self.clock()

    def skipped(self, job_id: str) -> float | None:
        now = self.clock()
        since = self._skipped_since.setdefault(job_id, now)
        if now - since < self.limit or job_id in self._told:
            return None
        self._told.add(job_id)
        return now - self._started.get(job_id, since)

    def ended(self, job_id: str) -> None:
        self._skipped_since.pop(job_id, None)
        self._told.discard(job_id)

    def on_event(self, event: JobEvent, log: logging.Logger) -> None:
        """The daemon's scheduler listener: a skipped turn at DEBUG (a warning once it lasts), a job's error."""
        if event.code == EVENT_JOB_SUBMITTED:  # a thread is free for every job: it starts now
            self.started(event.job_id)
            return
        if event.code == EVENT_JOB_MAX_INSTANCES:
            running = self.skipped(event.job_id)
            if running is None:
                log.debug("job %s is still running; this turn is skipped", event.job_id)
            else:
                log.warning("job %s has been running for %.0f minutes, its turns skipped meanwhile; if it never ends, a "
                            "request may hang (see the source's timeout settings)", event.job_id, running / 60)
            return
        self.ended(event.job_id)
        if event.code == EVENT_JOB_EXECUTED:
            return
        if getattr(event, "exception", None) is not None:
            log.error("job %s raised %r", event.job_id, event.exception)  # type: ignore[attr-defined]
        else:
            log.warning("job %s missed its run time", event.job_id)


def cron_trigger(expression: str, timezone: str) -> BaseTrigger:
    """The daemon's trigger for a ``full_sync_cron``: crontab's fields (``connector.schedule``, which
    ``SourceConfig`` validates with too), run once per wall-clock time across DST (``OncePerWallClock``)."""
    try:
        return OncePerWallClock(_parse_cron(expression, timezone))
    except ValueError as exc:
        raise ConfigError(f"full_sync_cron {exc}") from None
