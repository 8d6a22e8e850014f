"""Wiring: settings → validated sources, state file, Karla client; the operations the CLI and daemon call.

Every source is validated at construction, before anything runs, so a typo in one source's config is a
start-up error that names the key rather than a failure at 2 a.m.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timezone
from typing import Any

import httpx
from sqlalchemy.exc import DatabaseError

from connector import suspects
from connector.delivery import DeliveryResult, drain_outbox
from connector.early import EarlyDelivery, Gone
from connector.engine import RunCounts, SourceRuntime, sync_source
from connector.replay import Replay
from connector.report import ExitCode, SyncReport
from connector.errors import Aborted, ConfigError, ConnectorError, FatalError, RetryableError, ShopRefused, Unavailable
from connector.items import pending_groups
from connector.job_errors import unwritable
from connector.karla.client import KarlaClient
from connector.registry import validate_sources
from connector.settings import Settings
from connector.status import keep_delivery, state_status
from state import Outbox, StateDB, open_state

__all__ = ["Connector", "SyncReport", "ExitCode"]

log = logging.getLogger("connector")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Connector:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = _utcnow,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_request: Callable[[str, int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.broken: dict[str, str] = {}
        self.disabled: dict[str, str] = {}  # enabled = false and failing validation: skipped, not an error
        self.sources = self._validate_sources()
        self._transport, self._sleep, self._on_request = transport, sleep, on_request
        # A second delivery process can use neither an injected transport nor an injected clock or sleep.
        self._can_fork_delivery = transport is None and sleep is time.sleep and clock is _utcnow and on_request is None
        self._early: EarlyDelivery | None = None
        self._db: StateDB | None = None
        self._client: KarlaClient | None = None
        self._stop = threading.Event()  # set by abort(): adapters' and Karla's retry waits end at once

    def _validate_sources(self) -> dict[str, SourceRuntime]:
        """Every table at once (one error lists them all); a broken plugin or a disabled table that fails
        validation is skipped and reported (``connector.registry.validate_sources``), the others run."""
        checked = validate_sources(self.settings.sources)
        self.broken, self.disabled = checked.broken, checked.disabled
        slug = self.settings.karla.shop_slug
        return {name: SourceRuntime(name, cls, config, slug) for name, (cls, config) in checked.valid.items()}

    @property
    def db(self) -> StateDB:
        if self._db is None:
            self._db = open_state(self.settings.state.path)
        return self._db

    @property
    def client(self) -> KarlaClient:
        if self._client is None:
            self._client = KarlaClient(
                self.settings.karla, transport=self._transport, sleep=self._sleep, on_request=self._on_request
            )
        return self._client

    def now(self) -> float:
        return self.clock().timestamp()

    def abort(self) -> None:
        """Shutdown: calls waiting to retry (Karla's and the sources') give up at once; nothing is lost."""
        self._stop.set()
        if self._client is not None:
            self._client.abort()
        if self._early is not None:
            self._early.stop()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._db is not None:
            self._db.close()

    def selected(self, names: Sequence[str] | None) -> list[SourceRuntime]:
        invalid = [n for n in names or () if n in self.disabled]
        if invalid:
            raise ConfigError(f"source {invalid[0]!r} has enabled = false and is not valid: {self.disabled[invalid[0]]}")
        unknown = [n for n in names or () if n not in self.sources]
        if unknown:
            raise ConfigError(f"unknown source {unknown[0]!r}; configured: {', '.join(self.sources) or 'none'}")
        chosen = [self.sources[n] for n in names] if names else list(self.sources.values())
        for rt in chosen if names else ():
            if not rt.config.enabled:  # named on purpose (a test run, a one-off); say so, it surprises otherwise
                log.warning("source %s has enabled = false; it is read because it was named", rt.name, extra={"source": rt.name})
        return [rt for rt in chosen if rt.config.enabled or names]

    # -- operations ----------------------------------------------------------------------------------
    def sync_one(
        self,
        rt: SourceRuntime,
        *,
        full: bool = False,
        on_page: Callable[[RunCounts], None] | None = None,
        stop: Callable[[], bool] | None = None,
        dry_run: bool = False,
        on_stream: Callable[[str, bool], None] | None = None,
        replay: Replay | None = None,
    ) -> RunCounts:
        return sync_source(
            self.db, rt, clock=self.clock, full=full, on_page=on_page, stop=stop, dry_run=dry_run, abort=self._stop,
            on_stream=on_stream, replay=replay,
        )

    def deliver(
        self, on_batch: Callable[[int], None] | None = None, stop: Callable[[], bool] | None = None,
        skip_sources: Collection[str] | None = None, skip_shops: Collection[str] = (),
    ) -> DeliveryResult:
        """Drain the outbox; orders with parts from ``skip_sources`` (being read right now: a live set is
        looked at per order) or for ``skip_shops`` (refused by Karla lately) stay pending. The outcome is
        kept for `status` (``_recorded``)."""
        return self._recorded(lambda: self._drain(on_batch, stop, skip_sources, skip_shops), skip_shops)

    def _drain(
        self, on_batch: Callable[[int], None] | None, stop: Callable[[], bool] | None, skip_sources: Collection[str] | None,
        skip_shops: Collection[str] = (),
    ) -> DeliveryResult:
        groups = None
        if skip_sources is not None or skip_shops:
            groups = (rows for rows in pending_groups(self.db)
                      if rows[0].slug not in skip_shops and not any(r.source in (skip_sources or ()) for r in rows))
        # The only drain on the wire: the CLI's delivery process has ended by now, and the daemon drains one at a time.
        return drain_outbox(self.db, self.client, self.settings.karla, now=self.now, on_batch=on_batch, stop=stop,
                            groups=groups, drop_acknowledged=True, shops=self._shops())

    def _recorded(self, drain: Callable[[], DeliveryResult], left_out: Collection[str] = ()) -> DeliveryResult:
        """Run ``drain`` and keep its outcome for `status` (``connector.status.keep_delivery``): why Karla
        failed lived only in a daemon's memory or a `sync`'s output. A shutdown (``Aborted``) is no failure;
        a drain that left out refused shops (``left_out``) whose orders wait is one."""
        started = self.now()
        try:
            result = drain()
        except DatabaseError:  # the state file fails: keeping the outcome there would too (the caller says why)
            raise
        except Exception as exc:
            why = None if isinstance(exc, Aborted) else str(exc) if isinstance(exc, ConnectorError) else repr(exc)
            keep_delivery(self.db, started, self.now(), getattr(exc, "result", None), why)
            raise
        keep_delivery(self.db, started, self.now(), result, None, left_out)
        return result

    def _shops(self) -> set[str]:
        """The shops some configured source sends to (a refused shop outside them has its orders dead-lettered)."""
        return {self.settings.karla.shop_slug} | {s for rt in self.sources.values() for s in rt.config.shop_slugs()}

    def sync(
        self,
        names: Sequence[str] | None = None,
        *,
        full: bool = False,
        deliver: bool = True,
        dry_run: bool = False,
        on_page: Callable[[RunCounts], None] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> SyncReport:
        """Read every selected source into the outbox, then drain it.

        A big sync delivers complete orders from a second process while it still reads (``early``).
        One source failing, for whatever reason (an outage, a wrong token, a bug in a plugin), is reported
        and ends that source's run; the other sources are still read and what they queued is delivered.
        """
        report = SyncReport()
        report.fatal.update({n: e for n, e in self.broken.items() if not names or n in names})  # exit 2, as `check`
        wanted = [n for n in names if n not in self.broken] if names else None
        # Not while a full sync reads: it replays older versions of orders (older files first), which a
        # delivery process would send before the newest version, the one Karla usually has, replaced them.
        early = self._early = self._early_delivery(deliver and not dry_run and not full)
        try:
            self._read_into(report, wanted, full=full, dry_run=dry_run, on_page=on_page, early=early)
            if deliver:
                self.deliver_into(report, on_batch, early)
        finally:
            if early:
                early.close()
            self._early = None
        if deliver and not dry_run:
            self._count_put_off(report)
        return report

    def _count_put_off(self, report: SyncReport) -> None:
        """An order Karla fails on alone waits up to an hour between tries and becomes a letter only after
        ``failing_order_max_age_hours``: a run that leaves one waiting did not finish (exit 3), also when it
        tried none, or a cron job would see success for days while `status` alone shows the order."""
        with self.db.read() as conn:
            report.put_off, report.put_off_until = Outbox(conn).put_off(suspects.MARK, self.now())

    def _read_into(
        self, report: SyncReport, wanted: list[str] | None, *, full: bool, dry_run: bool,
        on_page: Callable[[RunCounts], None] | None, early: EarlyDelivery | None,
    ) -> None:
        for rt in self.selected(wanted) if wanted is None or wanted else []:
            try:
                report.sources[rt.name] = self.sync_one(
                    rt, full=full, on_page=_also(on_page, early), dry_run=dry_run,
                    on_stream=(lambda stream, last, name=rt.name: early.stream(name, stream, last)) if early else None,
                )
            except FatalError as exc:
                log.error("source %s stopped: %s", rt.name, exc, extra={"source": rt.name})
                report.fatal[rt.name] = str(exc)
            except (RetryableError, ConnectorError, OSError) as exc:
                log.error("source %s could not finish: %s", rt.name, exc, extra={"source": rt.name})
                report.failures[rt.name] = str(exc)
            except Exception as exc:  # noqa: BLE001 - a bug in an adapter: its run is recorded as failed
                if _state_unwritable(exc):  # no source's fault, and each would meet it: the CLI says it (exit 4)
                    raise
                log.error("source %s failed: %r", rt.name, exc, exc_info=True, extra={"source": rt.name})
                report.failures[rt.name] = f"{type(exc).__name__}: {exc}"

    def _early_delivery(self, wanted: bool) -> EarlyDelivery | None:
        if wanted and self._can_fork_delivery and self.settings.karla.deliver_while_reading_after:
            return EarlyDelivery(self.settings, self.db, self._shops())
        return None

    def deliver_into(
        self, report: SyncReport, on_batch: Callable[[int], None] | None = None, early: EarlyDelivery | None = None
    ) -> None:
        """Drain the outbox into ``report``: an unavailable Karla is recorded there (exit 3), not raised."""
        try:
            report.delivery = self._recorded(lambda: self._finish_early(early, on_batch) or self._drain(on_batch, None, None))
        except Unavailable as exc:
            report.delivery = getattr(exc, "result", report.delivery)
            report.karla_error = str(exc)
        except ShopRefused as exc:  # the other shops' orders went: the summary shows them, then exit 2
            report.delivery = getattr(exc, "result", report.delivery)
            report.shop_refused = str(exc)
        requests, sent = early.stats if early else (0, 0)  # the delivery process's, if one ran
        report.requests = requests + (self._client.stats.requests if self._client else 0)
        report.bytes_sent = sent + (self._client.stats.bytes_sent if self._client else 0)

    def _finish_early(self, early: EarlyDelivery | None, on_batch: Callable[[int], None] | None) -> DeliveryResult | None:
        """The delivery process's result, or None when there was none (or it vanished: the caller drains)."""
        if early is None:
            return None
        try:
            return early.finish(on_batch)
        except Gone as exc:
            log.warning("%s; delivering the rest from this process", exc)
            return None

    def existing_db(self) -> StateDB:
        """The state file for commands that only look or fix (``status``, ``dlq``): a missing file means a
        wrong path, and creating an empty one there would report "nothing pending"."""
        if self._db is None:
            self._db = open_state(self.settings.state.path, create=False)
        return self._db

    def status(self) -> dict[str, Any]:
        """What `status` shows; see ``connector.status`` (it needs no validated source, nor the API key)."""
        return state_status(self.settings, self.existing_db())


def _state_unwritable(exc: BaseException) -> bool:
    """The state file could not take a page (a full disk, a file-size limit, an I/O error): one line naming it,
    as the delivery side says it (``connector.job_errors.unwritable``), not a source's failure with a traceback."""
    full = unwritable(exc)
    return full is not None and full[0] is None


def _also(on_page: Callable[[RunCounts], None] | None, early: EarlyDelivery | None) -> Callable[[RunCounts], None] | None:
    if early is None:
        return on_page

    def both(counts: RunCounts) -> None:
        early.page(counts.enqueued)
        if on_page:
            on_page(counts)

    return both
