"""Source-side benchmarks: the Shopify adapter against a 100 points/s cost budget, and the Shopware
adapter over 10k orders. Both fakes are the ones the tests use and run in this process, so
``cpu_seconds`` includes the fakes' work; ``adapter_cpu_seconds`` is the adapter's own thread.
Shopify runs on a simulated clock: its sleeps advance time instantly, so "seconds" below are the time
the pacing would take against a real shop, measured exactly, and compared with the minimum the budget
allows."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from adapters.base import AdapterContext
from adapters.shopify import ShopifyAdapter, ShopifyConfig
from adapters.shopware import ShopwareAdapter, ShopwareConfig

__all__ = ["shopify_budget", "shopware_orders"]


def shopify_budget(orders: int = 10_000, restore_rate: float = 100.0) -> dict[str, Any]:
    from tests.shopify.factories import fulfillment, order
    from tests.shopify.fake_server import FakeShopify
    from tests.shopify.store import FakeClock

    clock = FakeClock()
    fake = FakeShopify(clock, maximum=1000, restore_rate=restore_rate).start()
    try:
        for n in range(orders):
            data = order(n)
            if n % 2:
                data["fulfillments"] = [fulfillment(data, n + 1, [f"T{n}"])]
            fake.add_order(data, updated=f"2026-{1 + n % 10:02d}-{1 + n % 28:02d}T10:00:{n % 60:02d}Z")
        config = ShopifyConfig(shop_domain=fake.domain, api_base_url=fake.url, access_token=fake.token,
                               full_sync_since=date(2026, 1, 1), recheck_unfulfilled_days=0, lag_seconds=0,
                               use_bulk_for_full_sync=False)
        context = AdapterContext(source="bench", clock=clock.now)
        adapter = ShopifyAdapter("bench", config, context, sleep=clock.sleep, monotonic=clock.monotonic)
        start_sim, start_cpu, start_wall, start_own = clock.elapsed, time.process_time(), time.perf_counter(), time.thread_time()
        read = sum(len(p.records) for p in adapter.read("orders", None))
        own = time.thread_time() - start_own
        simulated = clock.elapsed - start_sim
        served = [r for r in fake.requests if r.get("operation")]
        spent = sum(r.get("actual", 0) for r in served)
        minimum = max(0.0, (spent - 1000) / restore_rate)
        return {"orders": read, "requests": len(served), "points": spent, "simulated_seconds": round(simulated, 1),
                "budget_minimum_seconds": round(minimum, 1), "ratio": round(simulated / minimum, 3) if minimum else None,
                "throttled": fake.throttled, "wall_seconds": round(time.perf_counter() - start_wall, 2),
                "cpu_seconds": round(time.process_time() - start_cpu, 2), "adapter_cpu_seconds": round(own, 2)}
    finally:
        fake.stop()


def shopware_orders(orders: int = 10_000, page_size: int = 100) -> dict[str, Any]:
    from tests.shopware.factory import delivery, line_item, order
    from tests.shopware.fake_server import FakeShopware

    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    fake = FakeShopware(lambda: now).start()
    try:
        for n in range(orders):
            items = [line_item("Organic Cotton T-Shirt", f"SW{n}.1", 2, 24.95)]
            shipped = [delivery([(items[0], 2)], codes=[f"T{n}"], status="shipped")] if n % 2 else None
            fake.insert(order(str(10000 + n), items=items, deliveries=shipped), at=now - timedelta(minutes=1 + n % 600))
        config = ShopwareConfig(base_url=fake.url, client_id="SWIAFAKEINTEGRATION", client_secret="fake-secret-7d1e",
                                page_size=page_size, lag_seconds=0)
        adapter = ShopwareAdapter("bench", config, AdapterContext(source="bench", clock=lambda: now))
        start_wall, start_cpu, start_own = time.perf_counter(), time.process_time(), time.thread_time()
        read = sum(len(p.records) for p in adapter.read("orders", None))
        own = time.thread_time() - start_own
        return {"orders": read, "requests": fake.searches, "history_requests": fake.history_searches,
                "token_requests": fake.token_requests,
                "wall_seconds": round(time.perf_counter() - start_wall, 2), "cpu_seconds": round(time.process_time() - start_cpu, 2),
                "adapter_cpu_seconds": round(own, 2)}
    finally:
        fake.stop()
