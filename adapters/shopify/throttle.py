"""Client-side model of Shopify's GraphQL leaky bucket, so requests wait instead of being THROTTLED.

Every response reports ``extensions.cost.throttleStatus`` (``currentlyAvailable``, ``maximumAvailable``,
``restoreRate``) and the ``requestedQueryCost`` it charged up front. Before the next request the bucket
is extrapolated to now; if the expected cost does not fit, the client sleeps exactly until it does. A
query's cost is learnt from its last answer; before that the caller's estimate (from the published cost
rules) is used, and without one Shopify's per-query ceiling, so no request is sent into a THROTTLED.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

__all__ = ["CostBucket", "MAX_QUERY_COST", "shared_bucket"]

MAX_QUERY_COST = 1000.0  # Shopify refuses a single query above this (MAX_COST_EXCEEDED)
_MARGIN = 1.0  # Shopify rounds what it reports; one point keeps float error from costing a THROTTLED


@dataclass(slots=True)
class _State:
    available: float
    maximum: float
    rate: float
    at: float


class CostBucket:
    """One shop's bucket as last seen (Shopify keeps one per app and shop)."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic
        self._state: _State | None = None
        self._costs: dict[Hashable, float] = {}

    def __repr__(self) -> str:
        return f"CostBucket({self._state})"

    def observe(self, cost: dict[str, Any] | None, key: Hashable | None = None) -> None:
        """Remember what a response said about the bucket and about this query's cost."""
        if not cost:
            return
        status = cost.get("throttleStatus") or {}
        if status.get("currentlyAvailable") is not None:
            self._state = _State(
                float(status["currentlyAvailable"]),
                float(status.get("maximumAvailable") or MAX_QUERY_COST),
                float(status.get("restoreRate") or 0.0),
                self.monotonic(),
            )
        if key is not None and cost.get("requestedQueryCost") is not None:
            self._costs[key] = float(cost["requestedQueryCost"])

    def available(self) -> float | None:
        state = self._state
        if state is None:
            return None
        return min(state.maximum, state.available + (self.monotonic() - state.at) * state.rate)

    def expected_cost(self, key: Hashable, estimate: float | None = None) -> float:
        """What this query will be charged: as Shopify last priced it, else the estimate, else the ceiling."""
        ceiling = min(MAX_QUERY_COST, self._state.maximum) if self._state else MAX_QUERY_COST
        known = self._costs.get(key, estimate if estimate is not None else MAX_QUERY_COST)
        return min(known, ceiling)

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` points are available (0 when they are, or nothing is known yet)."""
        state, available = self._state, self.available()
        if state is None or available is None:
            return 0.0
        needed = min(cost + _MARGIN, state.maximum) - available
        if needed <= 0:
            return 0.0
        return needed / state.rate if state.rate > 0 else 1.0


_BUCKETS: dict[tuple[str, Callable[[], float]], CostBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def shared_bucket(shop: str, monotonic: Callable[[], float]) -> CostBucket:
    """The bucket of ``shop`` for every client of this process: the daemon builds a new adapter for each
    poll, and one starting blind sent its first query into a bucket the previous poll had left low
    (THROTTLED). Keyed by the clock too, so that clocks never mix (tests inject their own)."""
    with _BUCKETS_LOCK:
        return _BUCKETS.setdefault((shop, monotonic), CostBucket(monotonic))
