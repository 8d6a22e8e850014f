"""Bulk operations for the full sync: start one, poll it, stream its JSONL result as whole orders.

Shopify runs one bulk query per app and shop at a time (API < 2026-01); another one running, a failure,
a timeout or an unreadable result raises ``BulkUnavailable`` and the caller pages instead. Nested
connections come as their own JSONL lines with ``__parentId`` right after their parent (API 2025-01
groups them); orders are re-assembled while streaming, so memory stays flat whatever the shop's size. A
child line that does not follow its parent means the file is not grouped: rather than send orders with
missing line items, the bulk path gives up.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from adapters.shopify.client import ShopifyClient
from adapters.shopify.queries import BULK_CANCEL, BULK_RUN, BULK_STATUS, BULK_STATUS_COST, MUTATION_COST, bulk_orders_query
from connector.errors import RetryableError

__all__ = ["BulkRunner", "BulkUnavailable", "assemble"]

_ENDED = {"FAILED", "CANCELED", "CANCELING", "EXPIRED"}


class BulkUnavailable(Exception):
    """The bulk path cannot deliver this time; the message says why."""


class BulkRunner:
    def __init__(
        self, client: ShopifyClient, *, sleep: Callable[[float], None], poll_seconds: float, timeout_seconds: float,
        log: Any = None,
    ) -> None:
        self.client, self.sleep, self.poll_seconds = client, sleep, poll_seconds
        self.max_polls = max(1, math.ceil(timeout_seconds / poll_seconds))
        self.log = log or logging.getLogger(__name__)

    def __repr__(self) -> str:
        return f"BulkRunner(poll={self.poll_seconds}s, max_polls={self.max_polls})"

    def orders(self, search: str) -> Iterator[dict[str, Any]]:
        """Every order matching ``search``, complete with line items and discounts (not fulfillment items)."""
        operation = self._start(bulk_orders_query(search))
        url = self._wait(operation)
        if url:
            yield from self._download(url)

    def _start(self, query: str) -> str:
        payload = self.client.data(BULK_RUN, {"query": query}, cost=MUTATION_COST)["bulkOperationRunQuery"]
        errors = payload.get("userErrors") or []
        if errors:
            raise BulkUnavailable("; ".join(f"{e.get('code') or 'ERROR'}: {e.get('message')}" for e in errors))
        operation = payload["bulkOperation"]["id"]
        self.log.info("Shopify bulk operation %s started", operation)
        return str(operation)

    def _wait(self, operation: str) -> str | None:
        for _ in range(self.max_polls):
            status = self.client.data(BULK_STATUS, {"id": operation}, cost=BULK_STATUS_COST)["node"] or {}
            state = status.get("status")
            if state == "COMPLETED":
                self.log.info("Shopify bulk operation %s completed: %s objects", operation, status.get("objectCount"))
                return status.get("url")
            if state in _ENDED:
                raise BulkUnavailable(f"bulk operation {operation} ended {state} (error code {status.get('errorCode')})")
            self.sleep(self.poll_seconds)
        self._cancel(operation)
        raise BulkUnavailable(f"bulk operation {operation} did not finish in {self.max_polls * self.poll_seconds:.0f}s")

    def _cancel(self, operation: str) -> None:
        """A forgotten operation would block tomorrow's: cancel it, but never fail because of that."""
        try:
            self.client.data(BULK_CANCEL, {"id": operation}, cost=MUTATION_COST)
        except Exception as exc:  # noqa: BLE001 - best effort, the caller already falls back
            self.log.warning("could not cancel bulk operation %s: %s", operation, exc)

    def _download(self, url: str) -> Iterator[dict[str, Any]]:
        try:
            yield from assemble(self.client.stream_lines(url))
        except (httpx.HTTPError, RetryableError, ValueError) as exc:
            raise BulkUnavailable(f"bulk result could not be read: {exc}") from exc


def assemble(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Orders with their child lines re-attached as ``{"nodes": [...]}`` connections."""
    order: dict[str, Any] | None = None
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        parent = item.pop("__parentId", None)
        if parent is None:
            if order is not None:
                yield order
            order = {**item, "lineItems": {"nodes": []}, "discountApplications": {"nodes": []}}
            continue
        if order is None or parent != order.get("id"):
            raise BulkUnavailable(f"bulk result is not grouped: a child of {parent} does not follow it")
        key = "lineItems" if "/LineItem/" in str(item.get("id") or "") else "discountApplications"
        order[key]["nodes"].append(item)
    if order is not None:
        yield order
