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

    def render(self) -> bytes:
        return generate_latest(self.registry)
