"""Bulk operations for the full sync: start one, poll it, stream its JSONL result as whole orders.

Shopify runs one bulk query per app and shop at a time (API < 2026-01); another one running, a failure,
a timeout or an unreadable result raises ``BulkUnavailable`` and the caller pages instead.

Nested connections come as their own JSONL lines with ``__parentId``; orders are re-assembled while
streaming, one at a time, which works only if each child line comes right after its order ("grouped").
2025-01 and 2025-04 always group; 2025-07 added ``groupObjects`` and 2026-01 made it default to false, so
the mutation asks for grouping wherever the version knows the argument (``queries.bulk_run_document``).
That is the version Shopify *answers* with, not the configured one: a pin that is no longer supported
falls forward to a version that does not group unless asked.
A broken promise would send orders without line items, so the result is first downloaded into a
compressed temporary file while a cheap pass checks that every child follows its order; no order is
handed out before the whole file passed. An ungrouped file therefore fails before the first page, and
the paging fallback reads every order once, complete.

While Shopify works, ``batches`` yields an empty batch per status poll. The caller turns it into an empty
page, and the engine checks for a shutdown between pages, so a stop no longer waits for the operation
(up to ``bulk_timeout_seconds``); the operation is then cancelled, as after a timeout, so that it does
not block the next full sync. The cancel is one short request sent even after the daemon's abort, which
makes every ordinary request refuse to start.

A status poll that fails even after the client's retries (a 5xx episode) counts as "not finished yet": the
operation may have run for hours and goes on regardless, so abandoning it would waste that and could leave it
running. Only a timeout (``max_polls``) or a stop cancels it. The result download is retried likewise.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar

import httpx

from adapters.shopify.client import ShopifyClient
from adapters.shopify.queries import (
    BULK_CANCEL, BULK_STATUS, BULK_STATUS_COST, MUTATION_COST, bulk_orders_query, bulk_run_document,
)
from connector.errors import Aborted, RetryableError, Unavailable
from connector.retry import call_with_retries

__all__ = ["BulkRunner", "BulkUnavailable", "assemble", "chunks", "grouped"]

_ENDED = {"FAILED", "CANCELED", "CANCELING", "EXPIRED"}
_SETTLED = {"COMPLETED", *_ENDED}
CANCEL_TIMEOUT = 5.0  # a shutdown waits at most this long for the cancel to reach Shopify
T = TypeVar("T")


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

    def batches(self, search: str, size: int) -> Iterator[list[dict[str, Any]]]:
        """Orders matching ``search`` in lists of up to ``size``, complete with line items and discounts (not
        fulfillment items); an empty list for every status poll while Shopify is still working.

        Closing the generator while it waits (the engine stopping) cancels the operation.
        """
        operation = self._start(bulk_orders_query(search))
        status: dict[str, Any] = {}
        try:
            for _ in range(self.max_polls):
                polled = self._status(operation)
                status = status if polled is None else polled
                if status.get("status") in _SETTLED:
                    break
                yield []
                self.sleep(self.poll_seconds)
        finally:
            if status.get("status") not in _SETTLED:  # timed out, stopped, or a poll failed for good (not a 5xx)
                self._cancel(operation)
        url = self._result(operation, status)
        if url:
            yield from chunks(self._download(url), size)

    def _start(self, query: str) -> str:
        document = bulk_run_document(self.client.served_version())
        payload = self.client.data(document, {"query": query}, cost=MUTATION_COST)["bulkOperationRunQuery"]
        errors = payload.get("userErrors") or []
        if errors:
            raise BulkUnavailable("; ".join(f"{e.get('code') or 'ERROR'}: {e.get('message')}" for e in errors))
        operation = payload["bulkOperation"]["id"]
        self.log.info("Shopify bulk operation %s started", operation)
        return str(operation)

    def _status(self, operation: str) -> dict[str, Any] | None:
        """The operation's status; None when Shopify stayed unavailable through the retries (poll again later)."""
        try:
            return self.client.data(BULK_STATUS, {"id": operation}, cost=BULK_STATUS_COST)["node"] or {}
        except Aborted:
            raise
        except Unavailable as exc:
            self.log.warning("Shopify bulk operation %s: status poll failed (%s); polling again in %.0fs",
                             operation, exc, self.poll_seconds)
            return None

    def _result(self, operation: str, status: dict[str, Any]) -> str | None:
        """The result's URL (None: nothing matched), or why there is none."""
        state = status.get("status")
        if state == "COMPLETED":
            self.log.info("Shopify bulk operation %s completed: %s objects", operation, status.get("objectCount"))
            return status.get("url")
        if state in _ENDED:
            raise BulkUnavailable(f"bulk operation {operation} ended {state} (error code {status.get('errorCode')})")
        raise BulkUnavailable(f"bulk operation {operation} did not finish in {self.max_polls * self.poll_seconds:.0f}s")

    def _cancel(self, operation: str) -> None:
        """A forgotten operation would block tomorrow's: cancel it, but never fail because of that.

        Often called because the daemon is stopping, when ordinary requests are refused: one attempt, sent anyway.
        After a timeout (perhaps during an outage) it is retried like any request.
        """
        try:
            if self.client.abort is not None and self.client.abort.is_set():
                self.client.send_once(BULK_CANCEL, {"id": operation}, timeout=CANCEL_TIMEOUT)
            else:
                self.client.data(BULK_CANCEL, {"id": operation}, cost=MUTATION_COST)
            self.log.info("Shopify bulk operation %s cancelled", operation)
        except Exception as exc:  # noqa: BLE001 - best effort, the caller already falls back
            self.log.warning("could not cancel bulk operation %s: %s", operation, exc)

    def _download(self, url: str) -> Iterator[dict[str, Any]]:
        """Orders of the result file, once all of it is on disk and known to be grouped."""
        with tempfile.TemporaryFile(prefix="karla-shopify-bulk-") as spool:
            try:
                call_with_retries(self.client.retrying, lambda: self._spool(url, spool), "Shopify bulk result download",
                                  abort=self.client.abort)
            except Aborted:
                raise
            except (httpx.HTTPError, RetryableError, OSError, ValueError) as exc:
                raise BulkUnavailable(f"bulk result could not be read: {exc}") from exc
            spool.seek(0)
            with gzip.open(spool, "rt", encoding="utf-8") as lines:
                yield from assemble(lines)

    def _spool(self, url: str, spool: IO[bytes]) -> None:
        """Download into ``spool`` (gzip level 1: JSON shrinks several times for little CPU), checking grouping.

        Starts from an empty file, so that a retried download does not append to a broken one."""
        spool.seek(0)
        spool.truncate()
        with gzip.GzipFile(fileobj=spool, mode="wb", compresslevel=1) as packed:
            for line in grouped(self.client.stream_lines(url)):
                packed.write(line.encode("utf-8"))
                packed.write(b"\n")


def grouped(lines: Iterable[str]) -> Iterator[str]:
    """The non-blank lines, raising ``BulkUnavailable`` at the first child line that does not follow its order.

    The orders query nests connections one level deep, so every child's ``__parentId`` must be the order
    line last seen. O(1) memory.
    """
    current: str | None = None
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        parent = item.get("__parentId")
        if parent is None:
            current = item.get("id")
        elif parent != current:
            raise BulkUnavailable(f"bulk result is not grouped: a child of {parent} does not follow it")
        yield line


def assemble(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Orders with their child lines re-attached as ``{"nodes": [...]}`` connections (grouped lines only).

    In file order, which Shopify does not promise: the mapping orders line items and discounts itself."""
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


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
