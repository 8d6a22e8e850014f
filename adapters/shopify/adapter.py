"""The ``shopify`` source: orders and their parcels from the Admin GraphQL API, as one stream.

``read("orders", cursor)``:

1. Window: orders with ``updatedAt`` from ``lookback_seconds`` before the cursor to now minus
   ``lag_seconds``, sorted by ``UPDATED_AT``. The cursor only moves past whole timestamp groups (see
   ``cursor.py``) and never back. Orders in the overlap before the cursor are read and yielded again:
   Shopify's search index can lag, so an update stamped before the cursor may only now be searchable;
   the engine's change detection drops the unchanged ones (they cost reads, not Karla requests). An
   order updated while we page moves beyond the window's upper bound and is read by the next poll; with
   ``sortKey`` paging it is never skipped.
2. Recheck (see ``watch.py``, ``recheck.py``): orders of the last ``recheck_unfulfilled_days`` that
   still await a parcel or a tracking number are probed each poll, and read again when their parcels
   changed, such as a tracking number added without ``updatedAt`` moving.

The first poll of a new install (no cursor) reads everything since ``full_sync_since`` too: with at least
``BULK_FIRST_POLL_FROM`` orders (one ``ordersCount`` to know) as the full sync does, the cursor then starting
at the window's upper bound; with fewer it pages, as any poll.

A full sync reads everything since ``full_sync_since`` with a bulk operation, or pages when a bulk
operation is already running, fails or cannot be read. While the operation runs, an empty page per status
poll gives the engine its chance to stop the run (see ``bulk.py``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import httpx

from adapters.base import AdapterContext, Page, Record, StreamSpec
from adapters.shopify.bulk import BulkRunner, BulkUnavailable
from adapters.shopify.client import ShopifyClient
from adapters.shopify.config import ShopifyConfig
from adapters.shopify.cursor import CursorState, GroupTracker, Position, iso, node_position
from adapters.shopify.mapping import MappingOptions, delivery_methods, map_order, order_number, skip_reason, withheld
from adapters.shopify.queries import (
    CHECK, CHECK_COST, ORDERS_COUNT, ORDERS_COUNT_COST, SCOPES, SCOPES_COST, window_search,
)
from adapters.shopify.reader import OrderReader
from adapters.shopify.recheck import changed_orders
from adapters.shopify.untracked import tell_link_only
from adapters.shopify.watch import Watch
from connector.errors import Aborted, ConfigError, ConnectorError

__all__ = ["ShopifyAdapter"]

Node = dict[str, Any]
VISIBLE_DAYS = 60  # without read_all_orders Shopify shows only this much history
RESTART_AFTER = 10_000  # Shopify stops cursor pagination at 25,000 objects: restart the search well before
BULK_PAGE = 250
BULK_FIRST_POLL_FROM = 1000  # orders on a first poll (no cursor yet) read by a bulk operation: ~110 pages otherwise
# Only these show the fulfillment orders of the shop's own locations, where local pickups are (the assigned and
# third-party scopes show those of fulfillment services and apps).
FULFILLMENT_ORDER_SCOPES = {"read_merchant_managed_fulfillment_orders", "write_merchant_managed_fulfillment_orders"}
_ADDRESS_HINT = "the app needs protected customer data access (Level 2: name, address, e-mail, phone)"
_PICKUP_HINT = ("the app lacks protected customer data access (Level 2), or they are local pickups, which the connector "
                "recognises only with the read_merchant_managed_fulfillment_orders scope")


class ShopifyAdapter:
    type: ClassVar[str] = "shopify"
    Config: ClassVar[type[ShopifyConfig]] = ShopifyConfig

    def __init__(
        self, name: str, config: ShopifyConfig, context: AdapterContext, *,
        transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.config, self.context, self.log = name, config, context, context.log
        self.client = ShopifyClient(config, log=self.log, transport=transport, sleep=sleep, monotonic=monotonic, abort=context.stop)
        self.reader = OrderReader(self.client, config.page_size, log=self.log, on_errors=self._partial_data)
        self.bulk = BulkRunner(self.client, sleep=sleep, poll_seconds=config.bulk_poll_seconds,
                               timeout_seconds=config.bulk_timeout_seconds, log=self.log)
        self.options = MappingOptions(config.carriers, config.tags_as_segments, config.segment_prefix,
                                      config.skip_test_orders, config.skip_cancelled)
        self._warned: set[str] = set()
        self.skipped: Counter[str] = Counter()
        self._history_checked = False

    def __repr__(self) -> str:
        return f"ShopifyAdapter(name={self.name!r}, shop={self.config.shop_domain!r})"

    def close(self) -> None:
        self.client.close()

    # -- contract ----------------------------------------------------------------------------------
    def check(self) -> list[str]:
        data = self.client.data(CHECK, cost=CHECK_COST)
        scopes = _scopes(data)
        if not scopes & {"read_orders", "write_orders"}:
            raise ConfigError(f"Shopify {self.config.shop_domain}: the app lacks the read_orders scope "
                              f"(granted: {', '.join(sorted(scopes)) or 'none'})")
        shop = data["shop"]
        facts = [
            f"shop {shop['name']} ({shop['myshopifyDomain']}, plan {shop['plan']['displayName']})",
            f"Admin API {self.client.answered_version or self.config.api_version}",
            f"scopes: {', '.join(sorted(scopes))}",
        ]
        if "read_all_orders" not in scopes:
            facts.append(f"warning: no read_all_orders scope: only the last {VISIBLE_DAYS} days of orders are visible")
        if not scopes & {"read_fulfillments", "write_fulfillments"}:
            facts.append("warning: no read_fulfillments scope: fulfillments and tracking numbers may be missing")
        if not scopes & FULFILLMENT_ORDER_SCOPES:
            facts.append("warning: no read_merchant_managed_fulfillment_orders scope: local pickups cannot be told from "
                         "orders whose address Shopify withheld (both are rejected instead of pickups being skipped)")
        for fact in facts[3:]:
            self.log.warning("Shopify %s: %s", self.config.shop_domain, fact.removeprefix("warning: "))
        return facts

    def streams(self) -> Sequence[StreamSpec]:
        return [StreamSpec("orders", is_sorted=True, description="orders with their parcels, by updatedAt", complete_trackings=True)]

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        if stream != "orders":
            raise ValueError(f"unknown stream {stream!r}; the shopify source has 'orders'")
        if self.context.full_sync:
            yield from self._full_sync()
        else:
            yield from self._incremental(cursor)

    # -- incremental -------------------------------------------------------------------------------
    def _incremental(self, cursor: str | None) -> Iterator[Page]:
        state = CursorState.parse(cursor) if cursor else CursorState(Position(self._start()))
        days = self.config.recheck_unfulfilled_days
        watch = Watch(dict(state.watch), since=self._now() - timedelta(days=days), enabled=days > 0, log=self.log,
                      shop=self.config.shop_domain)
        upper = self._upper()
        if cursor is None and self._many_orders(state.position.updated_at, upper):  # a new install's first poll
            if (yield from self._bulk_read(window_search(iso(state.position.updated_at), iso(upper)), watch.observe)):
                yield Page(cursor=CursorState(Position(upper), watch.entries()).dump())  # all up to ``upper`` read
                return
        position, last = state.position, cursor
        emitted: set[str] = set()
        lookback = timedelta(seconds=self.config.lookback_seconds) if cursor else timedelta(0)
        for nodes, position in self._walk(state.position, upper, lookback):
            emitted.update(n["id"] for n in nodes)
            watch.observe(nodes)
            last = CursorState(position, watch.entries()).dump()
            yield self._page(nodes, last, ordered=True)
        for nodes in changed_orders(self.reader, watch, emitted):
            last = CursorState(position, watch.entries()).dump()
            yield self._page(nodes, last, ordered=False)
        final = CursorState(position, watch.entries()).dump()
        if final != last:
            yield Page(cursor=final)

    def _walk(
        self, start: Position, upper: datetime, lookback: timedelta = timedelta(0)
    ) -> Iterator[tuple[list[Node], Position]]:
        """Pages of orders after ``start`` up to ``upper``, each with the checkpoint it completes.

        The first search begins ``lookback`` before ``start`` and yields everything it finds there again
        (late-indexed updates); checkpoints never fall below ``start``. A long window restarts its search
        at the checkpoint (Shopify's pagination stops at 25,000 objects), without a lookback; orders
        already emitted past that checkpoint are remembered so none is sent twice.
        """
        lower = start
        floor = Position(start.updated_at - lookback) if lookback > timedelta(0) else start  # yield what is above
        ahead: dict[str, Position] = {}  # emitted beyond the checkpoint: their timestamp group is still open
        while lower.updated_at <= upper:
            tracker, count, restart = GroupTracker(lower), 0, False
            for nodes, has_next in self.reader.pages(window_search(iso(floor.updated_at), iso(upper))):
                fresh = []
                for node in nodes:
                    position = node_position(node)
                    if position.updated_at > upper:
                        continue  # still being written: the next poll reads it
                    tracker.see(position)
                    if position > floor and ahead.get(node["id"]) != position:
                        fresh.append(node)
                        ahead[node["id"]] = position
                count += len(nodes)
                if not has_next:
                    tracker.finish()
                ahead = {gid: p for gid, p in ahead.items() if p > tracker.checkpoint}
                yield fresh, tracker.checkpoint
                restart = has_next and count >= RESTART_AFTER and tracker.checkpoint > lower
                if restart:
                    break
            if not restart:
                return
            lower = floor = tracker.checkpoint

    # -- full sync ---------------------------------------------------------------------------------
    def _full_sync(self) -> Iterator[Page]:
        start, upper = self._start(), self._upper()
        if self.config.use_bulk_for_full_sync and (yield from self._bulk_read(window_search(iso(start), iso(upper)))):
            return
        for nodes, position in self._walk(Position(start), upper):
            yield self._page(nodes, CursorState(position).dump(), ordered=True)

    def _many_orders(self, start: datetime, upper: datetime) -> bool:
        """Whether the first poll reads at least ``BULK_FIRST_POLL_FROM`` orders: then one bulk operation beats
        paging through all history since ``full_sync_since`` at ~9 orders a request (one cheap count to know)."""
        if not self.config.use_bulk_for_full_sync:
            return False
        variables = {"query": window_search(iso(start), iso(upper)), "limit": BULK_FIRST_POLL_FROM}
        found = self.client.data(ORDERS_COUNT, variables, cost=ORDERS_COUNT_COST).get("ordersCount") or {}
        return int(found.get("count") or 0) >= BULK_FIRST_POLL_FROM

    def _bulk_read(self, search: str, observe: Callable[[list[Node]], None] | None = None) -> Generator[Page, None, bool]:
        """The bulk pages of ``search``; False (after a warning) when the bulk path failed and the caller pages."""
        try:
            yield from self._bulk_pages(search, observe)
            return True
        except Aborted:
            raise  # a shutdown, not a bulk problem: paging would stop at once, after a misleading warning
        except (BulkUnavailable, ConnectorError) as exc:
            self.log.warning("Shopify %s: bulk operation unavailable (%s); reading page by page instead",
                             self.config.shop_domain, exc)
            return False

    def _bulk_pages(self, search: str, observe: Callable[[list[Node]], None] | None = None) -> Iterator[Page]:
        """Pages of the bulk result; an empty page per status poll while Shopify works, so the engine
        can stop between them (``AdapterContext`` carries no stop signal; the engine checks after each page).
        ``observe`` sees every order read (the first poll's late-tracking watch)."""
        for nodes in self.bulk.batches(search, BULK_PAGE):
            if observe is not None:
                observe(nodes)
            nodes, skipped = self._kept(nodes)  # no parcel items fetched for orders that are not sent
            page = self._page(self.reader.fill_fulfillment_line_items(nodes), None, ordered=False)
            page.skipped += skipped
            yield page

    # -- helpers -----------------------------------------------------------------------------------
    def _page(self, nodes: list[Node], cursor: str | None, *, ordered: bool) -> Page:
        kept, skipped = self._kept(nodes)
        tell_link_only(kept, self.config.shop_domain, self.log)  # parcels that have a link but no number: not sent
        page = Page(cursor=cursor, skipped=skipped)
        for node in kept:
            result = map_order(node, self.options, cursor=node.get("updatedAt") if ordered else None)
            (page.records if isinstance(result, Record) else page.rejected).append(result)  # type: ignore[arg-type]
            if withheld(node):
                self._warn_once("address", "Shopify returned orders to ship without a shipping address (e.g. %s): %s",
                                node.get("name"), _ADDRESS_HINT if delivery_methods(node) else _PICKUP_HINT)
        return page

    def _kept(self, nodes: list[Node]) -> tuple[list[Node], list[str]]:
        """The orders to send, and the numbers of those left out: test and cancelled ones (settings ``skip_*``),
        pickups and in-store sales, with a debug line, counted in ``skipped`` by reason. Their numbers go on
        the page (``Page.skipped``), which clears their dead letters (a pickup's "address withheld" of 0.1.0).

        Only what is sent changes: the cursor and the late-tracking watch still see every order.
        """
        self.reader.fill_delivery_methods(nodes)  # whether an order without an address is a pickup
        kept, left_out = [], []
        for node in nodes:
            reason = skip_reason(node, self.options)
            if reason:
                self.skipped[reason] += 1
                left_out.append(order_number(node))
                self.log.debug("Shopify order %s not sent: %s", node.get("name"), reason)
            else:
                kept.append(node)
        self.reader.fill_discount_allocations(kept)  # what a fixed "per item" code took off (rare: asked per order)
        return kept, left_out

    def _partial_data(self, errors: list[dict[str, Any]]) -> None:
        fields = sorted({str((e.get("path") or ["?"])[-1]) for e in errors})
        self._warn_once("partial", "Shopify withheld %s: %s; orders are sent without it (grant the app protected "
                        "customer data access or the missing scope)", ", ".join(fields), errors[0].get("message"))

    def _warn_once(self, topic: str, message: str, *args: Any) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            self.log.warning(message, *args)

    def _now(self) -> datetime:
        return self.context.clock().astimezone(timezone.utc)

    def _upper(self) -> datetime:
        return (self._now() - timedelta(seconds=self.config.lag_seconds)).replace(microsecond=0)

    def _start(self) -> datetime:
        since = self.config.full_sync_since
        visible = self._now() - timedelta(days=VISIBLE_DAYS)
        if since is None:
            return visible.replace(microsecond=0)
        start = datetime(since.year, since.month, since.day, tzinfo=timezone.utc)
        if start < visible and not self._history_checked:
            self._history_checked = True
            if "read_all_orders" not in _scopes(self.client.data(SCOPES, cost=SCOPES_COST)):
                self._warn_once("history", "full_sync_since %s is more than %d days back, but without the read_all_orders "
                                "scope Shopify shows only the last %d days", since, VISIBLE_DAYS, VISIBLE_DAYS)
        return start


def _scopes(data: dict[str, Any]) -> set[str]:
    return {s["handle"] for s in (data.get("currentAppInstallation") or {}).get("accessScopes") or []}
