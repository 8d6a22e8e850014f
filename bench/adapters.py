"""Source-side benchmarks: the Shopify adapter against a 100 points/s cost budget, and the Shopware
adapter over 10k orders. Both fakes are the ones the tests use. Shopify runs on a simulated clock: its
sleeps advance time instantly, so "seconds" below are the time the pacing would take against a real
shop, measured exactly, and compared with the minimum the budget allows."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from adapters.base import AdapterContext
from adapters.shopify import ShopifyAdapter, ShopifyConfig
from adapters.shopware import ShopwareAdapter, ShopwareConfig

__all__ = ["shopify_budget", "shopware_orders"]


def shopify_budget(orders: int = 10_000, restore_rate: float = 100.0) -> dict[str, Any]:
    from tests.shopifysource.conftest import fulfillment, make_order
    from tests.shopifysource.fake_shopify import FakeClock, FakeShopify

    clock = FakeClock()
    fake = FakeShopify(clock, bucket=1000, restore_rate=restore_rate).start()
    try:
        for n in range(orders):
            fake.put(make_order(n, updated=f"2026-{1 + n % 11:02d}-{1 + n % 28:02d}T10:00:{n % 60:02d}Z",
                                fulfillments=[fulfillment(n + 1, [f"T{n}"], skus=[f"SKU-{n}-A"])] if n % 2 else []))
        config = ShopifyConfig(shop_domain="bench.myshopify.com", api_base_url=fake.url, access_token="shpat_test_token",
                               full_sync_since=date(2026, 1, 1), recheck_days=0, lag_seconds=0)
        context = AdapterContext(source="bench", clock=lambda: datetime(2026, 12, 31, tzinfo=timezone.utc))
        adapter = ShopifyAdapter("bench", config, context, sleep=clock.sleep, monotonic=clock.monotonic)
        start_sim, start_cpu, start_wall = clock.now, time.process_time(), time.perf_counter()
        read = sum(len(p.records) for p in adapter.read("orders", None))
        simulated = clock.now - start_sim
        spent = sum(entry.get("cost", 0) for entry in fake.log if not entry.get("throttled"))
        minimum = max(0.0, (spent - 1000) / restore_rate)
        return {"orders": read, "requests": adapter.client.requests, "points": spent, "simulated_seconds": round(simulated, 1),
                "budget_minimum_seconds": round(minimum, 1), "ratio": round(simulated / minimum, 3) if minimum else None,
                "throttled": fake.throttled, "wall_seconds": round(time.perf_counter() - start_wall, 1),
                "cpu_seconds": round(time.process_time() - start_cpu, 1)}
    finally:
        fake.stop()


def shopware_orders(orders: int = 10_000, page_size: int = 100) -> dict[str, Any]:
    from tests.shopwaresource.fake_shopware import FakeShopware
    from tests.shopwaresource.test_shopware import delivery, make_order

    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    fake = FakeShopware(now=lambda: now).start()
    try:
        for n in range(orders):
            order = make_order(n)
            if n % 2:
                order["deliveries"] = [delivery(order["lineItems"], [f"T{n}"], "shipped")]
            fake.insert(order, at=now - timedelta(minutes=1 + n % 600))
        config = ShopwareConfig(base_url=fake.url, client_id="SWIAFAKE", client_secret="sw-s3cr3t-value", page_size=page_size, lag_seconds=0)
        adapter = ShopwareAdapter("bench", config, AdapterContext(source="bench", clock=lambda: now))
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        read = sum(len(p.records) for p in adapter.read("orders", None))
        return {"orders": read, "requests": len(fake.searches), "token_requests": fake.token_requests,
                "wall_seconds": round(time.perf_counter() - start_wall, 1), "cpu_seconds": round(time.process_time() - start_cpu, 1)}
    finally:
        fake.stop()
