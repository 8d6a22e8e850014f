"""The ``shopware`` source: orders and their deliveries (tracking codes) from the Shopware 6 Admin API.

How a poll reads without skipping or duplicating rows while the shop is being written to:

1. The poll fixes its target ``end = shop_now - lag_seconds`` once (see ``ShopwareClient.shop_now``) and
   reads closed windows ``[start, end]`` from the last window end minus ``overlap_seconds`` (rows are
   stamped before their transaction commits, so one can appear late with an older timestamp). A backlog
   is cut into windows of at most ``window_hours``.
2. A window selects orders created, updated, or with a delivery created or updated in it. Every write
   during the scan stamps ``now > end``, so nothing can *enter* the window while it is paged.
3. Inside the window it pages with a keyset, not offsets: ``autoIncrement > last`` sorted by
   ``autoIncrement``. With ``page``/offset, an order updated during the scan leaves the filtered set and
   every row after it shifts one place forward, so one row is skipped per such update (and inserts shift
   rows back, duplicating). A keyset does not move. ``autoIncrement`` is the key because it is a unique,
   immutable integer; ``id`` cannot be one, since Shopware binds range values as raw strings and ids are
   binary in SQL. An order that left the window by being updated is read by the next window.
4. After every page the cursor is committed: ``{"window_end": ISO}`` once a window is complete, plus
   ``"scan": {"start", "end", "after"}`` in the middle of one, so a crash resumes the same closed window
   at the same key (pages are reproducible from their predecessor's cursor).

The integration needs read access to: order, order_line_item, order_delivery, order_delivery_position,
order_address, order_customer, customer, state_machine_state, shipping_method, currency, country,
country_state, media, sales_channel and tag (every loaded association is checked; ``check`` probes them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import httpx

from adapters.base import AdapterContext, Page, Record, Rejected, StreamSpec
from adapters.shopware.client import LimitExceeded, RouteNotFound, ShopwareClient
from adapters.shopware.config import ShopwareConfig
from adapters.shopware.criteria import Window, probe_criteria, window_criteria
from adapters.shopware.mapping import map_order
from connector.errors import FatalError

__all__ = ["ShopwareAdapter"]


def _ms(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(microsecond=moment.microsecond // 1000 * 1000)


def _utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


class ShopwareAdapter:
    type: ClassVar[str] = "shopware"
    Config: ClassVar[type[ShopwareConfig]] = ShopwareConfig

    def __init__(self, name: str, config: ShopwareConfig, context: AdapterContext, *,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name, self.config, self.context = name, config, context
        self.client = ShopwareClient(config, clock=context.clock, log=context.log, transport=transport, sleep=sleep,
                                     monotonic=monotonic, abort=context.stop)
        self.page_size = config.page_size

    def __repr__(self) -> str:
        return f"ShopwareAdapter(name={self.name!r}, url={self.config.base_url!r}, client_id={self.config.client_id!r})"

    def close(self) -> None:
        self.client.close()

    def check(self) -> list[str]:
        """Token, version, and one order read with every association the sync loads (privileges)."""
        self.client.ensure_token()
        try:
            version = self.client.call("GET", "/_info/version").get("version") or "(version unknown)"
        except RouteNotFound:
            version = "(version unknown)"
        rows = self.client.search("order", probe_criteria()).get("data") or []
        newest = f"newest order {rows[0].get('orderNumber')}" if rows else "no orders yet"
        return [f"Shopware {version} at {self.config.base_url}",
                f"integration {self.config.client_id}: token issued, orders readable ({newest})"]

    def streams(self) -> Sequence[StreamSpec]:
        return [StreamSpec("orders", is_sorted=True, description="orders and their trackings, per closed time window")]

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        if stream != "orders":
            raise ValueError(f"unknown stream {stream!r}; the shopware source has 'orders'")
        done, scan = self._load(None if self.context.full_sync else cursor)
        self.client.ensure_token()  # the token response's Date header tells the shop's clock
        target = _ms(self.client.shop_now() - timedelta(seconds=self.config.lag_seconds))
        if scan is not None:
            yield from self._scan(scan[0], scan[1], done)
            done = scan[0].end
        if done is not None and target <= done:
            return  # polled again within the same instant (or the clock went back): nothing new yet
        start = done - timedelta(seconds=self.config.overlap_seconds) if done is not None else self._first_start()
        step = timedelta(hours=self.config.window_hours)
        while start < target:
            end = min(start + step, target)
            yield from self._scan(Window(start, end), 0, done)
            start = done = end

    def _load(self, cursor: str | None) -> tuple[datetime | None, tuple[Window, int] | None]:
        """``(window_end, (window, after) of an unfinished scan)``; an unreadable cursor starts afresh."""
        if not cursor:
            return None, None
        try:
            state = json.loads(cursor)
            done = _utc(state["window_end"]) if state.get("window_end") else None
            scan = state.get("scan")
            if scan is None:
                return done, None
            window = Window(_utc(scan["start"]), _utc(scan["end"]))
            return done, (window, int(scan["after"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            self.context.log.warning("shopware: unreadable cursor %r; reading from the initial start again", cursor[:200])
            return None, None

    def _first_start(self) -> datetime:
        since = self.config.full_sync_since
        if since is not None:
            return datetime(since.year, since.month, since.day, tzinfo=timezone.utc)
        return _ms(self.context.clock() - timedelta(days=self.config.initial_days))

    def _scan(self, window: Window, after: int, done: datetime | None) -> Iterator[Page]:
        self.context.log.debug("shopware: reading window %s .. %s after #%d", _iso(window.start), _iso(window.end), after)
        while True:
            rows, limit = self._search(window, after)
            if rows and _key(rows[-1]) <= after:
                raise FatalError(f"{self.client.who} ignored the autoIncrement filter; cannot page safely")
            page = Page()
            for row in rows:
                after = _key(row)
                result = self._map(row, window, f"{_iso(window.end)}/{after:015d}")
                if isinstance(result, Record):
                    page.records.append(result)
                elif result is not None:
                    page.rejected.append(result)
            if len(rows) < limit:
                page.cursor = json.dumps({"window_end": _iso(window.end)})
                yield page
                return
            scan = {"start": _iso(window.start), "end": _iso(window.end), "after": after}
            page.cursor = json.dumps({"window_end": _iso(done) if done else None, "scan": scan})
            yield page

    def _search(self, window: Window, after: int) -> tuple[list[dict[str, Any]], int]:
        """One page; a 400 FRAMEWORK__QUERY_LIMIT_EXCEEDED lowers the page size (to the shop's cap if named)."""
        while True:
            criteria = window_criteria(window, after, self.page_size, self.config.order_states)
            try:
                return list(self.client.search("order", criteria).get("data") or []), self.page_size
            except LimitExceeded as exc:
                smaller = exc.max_limit if exc.max_limit and exc.max_limit < self.page_size else self.page_size // 2
                if smaller < 1:
                    raise FatalError(f"{self.client.who}: refuses even one order per page") from exc
                self.context.log.warning("Shopware caps pages below %d; using %d (set page_size)", self.page_size, smaller)
                self.page_size = smaller

    def _map(self, row: dict[str, Any], window: Window, cursor: str) -> Record | Rejected | None:
        try:
            return map_order(row, self.config, window.start, cursor)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            number = str(row.get("orderNumber") or "") or None
            return Rejected(location=f"shopware order {number} ({row.get('id')})", reason=f"unexpected data: {exc!r}", key=number)


def _key(row: dict[str, Any]) -> int:
    try:
        return int(row["autoIncrement"])
    except (KeyError, TypeError, ValueError):
        raise FatalError("Shopware returned an order without autoIncrement; cannot page safely") from None
