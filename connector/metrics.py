"""Prometheus metrics (prometheus-client) on a private registry, named per Prometheus conventions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

__all__ = ["Metrics"]


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

    def on_request(self, endpoint: str, status: int) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()

    def count_delivery(self, orders: int, trackings: int, dead_by_source: dict[str, int]) -> None:
        self.orders.inc(orders)
        self.trackings.inc(trackings)
        for source, dead in dead_by_source.items():  # refused by Karla, counted under their source
            self.dead.labels(source=source).inc(dead)

    def refresh(self, pending: int, last_ok: dict[str, float], sources: list[str], now: float, started: float) -> None:
        """Every source the daemon runs has a lag series, also one that never succeeded (it counts from the
        daemon's start), so an alert on the lag fires for a source that has been broken from day one.
        Disabled sources are not polled and get none; sources whose adapter failed to load count from start."""
        self.outbox.set(pending)
        for name in sources:
            self.lag.labels(source=name).set(max(0.0, now - (last_ok.get(name) or started)))

    def render(self) -> bytes:
        return generate_latest(self.registry)
