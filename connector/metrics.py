"""Prometheus metrics (prometheus-client) on a private registry, named per Prometheus conventions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from connector.karla.client import NO_ANSWER

__all__ = ["RUN_STATUSES", "Metrics"]

# sync_runs_total's status label: ``fatal`` is a failure no retry fixes (a missing folder, a refused login),
# which `status` shows as ``failed`` like any other; ``failed`` may pass by itself (a timeout, a locked file)
RUN_STATUSES = ("ok", "failed", "fatal")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.orders = Counter("karla_connector_orders_delivered", "Order objects Karla acknowledged", registry=r)
        self.trackings = Counter("karla_connector_trackings_delivered", "Trackings Karla acknowledged", registry=r)
        self.requests = Counter(
            "karla_connector_karla_requests", "Requests to Karla by endpoint and HTTP status", ["endpoint", "status"], registry=r
        )
        self.retries = Counter("karla_connector_retries", "Karla requests retried after a transient failure", registry=r)
        self.dead = Counter(
            "karla_connector_dead_letters", "Records moved to the dead-letter store (bad input or refused by Karla), by source",
            ["source"], registry=r,
        )
        self.outbox = Gauge("karla_connector_outbox_depth", "Orders with parts waiting for delivery", registry=r)
        self.lag = Gauge(
            "karla_connector_source_lag_seconds",
            "Seconds since the source's last successful sync (since the daemon started, if none yet); enabled sources only",
            ["source"], registry=r,
        )
        self.last_success = Gauge(
            "karla_connector_source_last_success_timestamp_seconds", "UNIX time of the last successful sync", ["source"], registry=r
        )
        self.runs = Counter("karla_connector_sync_runs", "Sync runs by source and outcome", ["source", "status"], registry=r)

    def start(self, sources: list[str]) -> None:
        """Every source's counters at 0 from the start: a series that appears at 1 (the first dead letter after a
        restart) is one ``increase()`` never sees, so the alert on it never fires."""
        for name in sources:
            self.dead.labels(source=name)
            for status in RUN_STATUSES:
                self.runs.labels(source=name, status=status)

    def on_request(self, endpoint: str, status: int) -> None:
        """``NO_ANSWER`` (refused, timed out, reset) counts as status ``error``: an outage that never reaches
        Karla must show in the request counts, not only in the retries."""
        self.requests.labels(endpoint=endpoint, status="error" if status == NO_ANSWER else str(status)).inc()

    def count_delivery(self, orders: int, trackings: int, dead_by_source: dict[str, int]) -> None:
        self.orders.inc(orders)
        self.trackings.inc(trackings)
        for source, dead in dead_by_source.items():  # refused by Karla, counted under their source
            self.dead.labels(source=source).inc(dead)

    def refresh(self, pending: int, last_ok: dict[str, float], sources: list[str], now: float, started: float) -> None:
        """Every source the daemon runs has a lag series, also one that never succeeded (it counts from the
        daemon's start), so an alert on the lag fires for a source that has been broken from day one.
        Disabled sources are not polled and get none; sources whose adapter failed to load count from start.
        The last success comes from the state file too: after a restart a source still broken keeps its series
        (an alert on ``time() - last_success`` has something to fire on)."""
        self.outbox.set(pending)
        for name in sources:
            self.lag.labels(source=name).set(max(0.0, now - (last_ok.get(name) or started)))
            if last_ok.get(name):
                self.last_success.labels(source=name).set(last_ok[name])

    def render(self) -> bytes:
        return generate_latest(self.registry)
