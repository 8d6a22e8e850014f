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
5. For each page with trackable deliveries, one more search (paged only beyond ``HISTORY_LIMIT`` rows) reads
   their state machine history: when each was first moved into a shipped state, which is its trackings'
   ``tracking_placed_at`` (see ``mapping.first_shipped``), not one request per delivery. The field naming
   the delivery differs by version (``criteria.HISTORY_ID_FIELDS``); an unmapped-field answer moves on to
   the older name once. Without the read privilege the creation time is sent instead, with a warning.
6. A page Shopware cannot serve (a 5xx or timeout after the retries, while ``search-ids`` for it answers)
   is halved until it loads; an order that fails alone becomes a dead letter and the keyset moves past it
   (``_orders``, see ``unserved``). An outage stays an outage: nothing is skipped unless the requests around it succeed.

The integration needs read access to: order, order_line_item, order_delivery, order_delivery_position,
order_address, order_customer, customer, state_machine_state, shipping_method, currency, country,
country_state, media, sales_channel and tag (every loaded association is checked; ``check`` probes them),
state_machine_history for the shipping times, and state_machine to check ``order_states`` and ``delivery_states``
against the shop's (``states``; without it they go unchecked). ``check`` also names the configured sales channels (the
``sales_channel:read`` the order search needs) and warns about ids Shopware does not have.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import httpx

from adapters.base import AdapterContext, Page, Record, Rejected, StreamSpec
from adapters.shopware.channels import channel_facts
from adapters.shopware.client import LimitExceeded, MissingPrivilege, RouteNotFound, ShopwareClient, UnknownField
from adapters.shopware.config import ShopwareConfig, channel_key
from adapters.shopware.criteria import HISTORY_ID_FIELDS, Window, history_criteria, probe_criteria
from adapters.shopware.cursor import iso, load_cursor, ms
from adapters.shopware.mapping import first_shipped, left_out, map_order, tracked_delivery_ids, unsent_lines
from adapters.shopware.memory import first_time
from adapters.shopware.numbers import NumberGuard, number_facts
from adapters.shopware.states import state_facts, use_states
from adapters.shopware.unserved import MAX_UNSERVED, orders_page, unserved_answer, unserved_letter
from connector.errors import ConfigError, FatalError

# MAX_UNSERVED and unserved_answer (adapters.shopware.unserved) stay importable from here, as before.
__all__ = ["MAX_UNSERVED", "ShopwareAdapter", "unserved_answer"]


class ShopwareAdapter:
    type: ClassVar[str] = "shopware"
    Config: ClassVar[type[ShopwareConfig]] = ShopwareConfig

    def __init__(self, name: str, config: ShopwareConfig, context: AdapterContext, *,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name, self.config, self.context = name, config, context
        self.client = ShopwareClient(config, clock=context.clock, log=context.log, transport=transport, sleep=sleep,
                                     monotonic=monotonic, abort=context.stop)
        self.page_size = config.page_size  # lowered for good if the shop caps pages
        self.order_limit = config.page_size  # this poll's: halved while pages fail to load (see ``_orders``)
        self.history_limit = HISTORY_LIMIT  # history rows per search, lowered like page_size if the shop caps it
        self.history_field = HISTORY_ID_FIELDS[0]  # moves to the 6.4 name on an unmapped-field answer
        self.history_refused: str | None = None  # the 403's message once history turned out unreadable
        self.skipped: Counter[str] = Counter()  # orders not sent on purpose, by reason (see ``_skip``)
        self.states_reviewed = False  # state names checked against the shop's, kept for the process (``states``)
        # The Karla shop of unlisted channels: the source's shop_slug, else [karla].shop_slug where the engine lends it
        # (``AdapterContext.shop_slug``); a channel listed with that slug shares the shop, so its numbers can clash.
        self.default_slug: str | None = config.shop_slug or getattr(context, "shop_slug", None)
        self.numbers = NumberGuard(self.default_slug)  # order numbers read by Karla shop: a second is a letter (``numbers``)

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
        self._shipped_times([_NIL_ID], probe=True)
        self.config, review = use_states(self.client, self.config, self.context.log, fresh=True)
        self.states_reviewed = True
        if review.problems:  # a name that selects nothing: no order or tracking would ever be sent for it
            raise ConfigError(f"{self.client.who}: " + "; ".join(review.problems))
        if not self.config.delivery_states:
            history = "delivery history not read: delivery_states is empty, so no trackings are sent"
        elif self.history_refused is None:
            history = "delivery history readable (shipping times)"
        else:
            history = f"delivery history NOT readable, trackings carry the delivery's creation time: {self.history_refused}"
        return [f"Shopware {version} at {self.config.base_url}",
                f"integration {self.config.client_id}: token issued, orders readable ({newest})", history,
                *state_facts(self.config, review),
                *channel_facts(self.client, self.config, self.context.log),
                *number_facts(self.client, self.config, self.context.log, self.default_slug),
                *(f"WARNING: {w}" for w in [self.client.tls_warning] if w)]  # verify_tls = false: logged, and said here

    def streams(self) -> Sequence[StreamSpec]:
        return [StreamSpec("orders", is_sorted=True, description="orders and their trackings, per closed time window",
                           complete_trackings=True)]

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        if stream != "orders":
            raise ValueError(f"unknown stream {stream!r}; the shopware source has 'orders'")
        before, self.numbers = self.skipped.copy(), NumberGuard(self.default_slug)
        yield from self._windows(cursor)
        if left := self.skipped - before:  # a count a merchant can notice, where the debug lines are off
            self.context.log.info("shopware: %d orders read and not sent this poll: %s", sum(left.values()),
                                  ", ".join(f"{count} {reason}" for reason, count in left.most_common()))

    def _windows(self, cursor: str | None) -> Iterator[Page]:
        done, scan = load_cursor(None if self.context.full_sync else cursor, self.context.log)
        self.order_limit = self.page_size
        self.client.ensure_token()  # the token response's Date header tells the shop's clock
        if not self.states_reviewed:
            self.config, _ = use_states(self.client, self.config, self.context.log)
            self.states_reviewed = True
        if first_time(self.config, "number ranges"):  # channels that can issue the same numbers: warned once a process
            number_facts(self.client, self.config, self.context.log, self.default_slug)
        target = ms(self.client.shop_now() - timedelta(seconds=self.config.lag_seconds))
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

    def _first_start(self) -> datetime:
        since = self.config.full_sync_since
        if since is not None:
            return datetime(since.year, since.month, since.day, tzinfo=timezone.utc)
        return ms(self.context.clock() - timedelta(days=self.config.initial_days))

    def _scan(self, window: Window, after: int, done: datetime | None) -> Iterator[Page]:
        self.context.log.debug("shopware: reading window %s .. %s after #%d", iso(window.start), iso(window.end), after)
        while True:
            rows, limit, unserved = self._orders(window, after)
            if rows and _key(rows[-1]) <= after:
                raise FatalError(f"{self.client.who} ignored the autoIncrement filter; cannot page safely")
            shipped = self._shipped_times(tracked_delivery_ids(rows, self.config))
            page = Page(rejected=unserved)
            for row in rows:
                after = _key(row)
                result = self._map(row, window, f"{iso(window.end)}/{after:015d}", shipped)
                if isinstance(result, Record):
                    page.records.append(result)
                elif isinstance(result, Rejected):
                    page.rejected.append(result)
                elif result is not None:
                    page.skipped.append(result)
            if len(rows) < limit:
                page.cursor = json.dumps({"window_end": iso(window.end)})
                yield page
                return
            scan = {"start": iso(window.start), "end": iso(window.end), "after": after}
            page.cursor = json.dumps({"window_end": iso(done) if done else None, "scan": scan})
            yield page

    def _orders(self, window: Window, after: int) -> tuple[list[dict[str, Any]], int, list[Rejected]]:
        """One keyset page, its limit, and the orders before it Shopware could not serve (dead letters): see
        ``unserved.orders_page``. A page halved to load is kept for this poll (``order_limit``)."""
        rows, limit, size, unserved = orders_page(self.client, self.config, self.context.log, self._search, window,
                                                  after, self.order_limit)
        if limit < size:  # the shop's cap (LimitExceeded): for good
            self.page_size = min(self.page_size, limit)
        self.order_limit = self.page_size if unserved else limit  # past a bad order: the configured size again
        return rows, limit, [unserved_letter(self.client, self.context.log, ident, message) for ident, message in unserved.items()]

    def _search(self, entity: str, criteria: Callable[[int], dict[str, Any]], size: int) -> tuple[list[dict[str, Any]], int]:
        """One page of ``criteria(size)`` and the size it took: a 400 FRAMEWORK__QUERY_LIMIT_EXCEEDED lowers it
        (to the shop's cap if named); the caller keeps the lower size for its later pages."""
        while True:
            try:
                return list(self.client.search(entity, criteria(size)).get("data") or []), size
            except LimitExceeded as exc:
                smaller = exc.max_limit if exc.max_limit and exc.max_limit < size else size // 2
                if smaller < 1:
                    raise FatalError(f"{self.client.who}: refuses even one {entity} row per page") from exc
                hint = " (set page_size)" if entity == "order" else ""
                self.context.log.warning("Shopware caps %s pages below %d; using %d%s", entity, size, smaller, hint)
                size = smaller

    def _shipped_times(self, delivery_ids: list[str], probe: bool = False) -> dict[str, str]:
        """Delivery id -> when it was first marked shipped, for the deliveries of one page: one search, paged
        only if their transitions into or out of a shipped state outnumber ``history_limit``. A 403 is warned
        about once a process and the mapping falls back to the deliveries' creation time, so a missing privilege
        does not stop the sync of everything else. Without ``delivery_states`` nothing is searched: the filter on
        them would be an empty ``equalsAny``, which Shopware refuses (400 FRAMEWORK__INVALID_FILTER_QUERY)."""
        entries: list[dict[str, Any]] = []
        page = 1
        if not self.config.delivery_states:
            return {}
        while delivery_ids and self.history_refused is None:
            try:
                rows, limit = self._history_page(delivery_ids, 1 if probe else self.history_limit, page)
            except MissingPrivilege as exc:
                self.history_refused = str(exc)
                if first_time(self.config, "history refused"):  # an adapter per poll: said once a process
                    self.context.log.warning("shopware: cannot read the state machine history (%s); tracking_placed_at is "
                                             "the delivery's creation time until state_machine_history:read is granted", exc)
                return {}
            entries += rows
            if probe or len(rows) < limit:
                break
            page += 1
        return first_shipped(entries, self.config.delivery_states)

    def _history_page(self, delivery_ids: list[str], limit: int, page: int) -> tuple[list[dict[str, Any]], int]:
        """One page of history and its limit; an unmapped ``referencedId`` (6.4) moves to ``entityId.id`` for
        the rest of this adapter's life (one refused request per run on 6.4)."""
        while True:
            def criteria(size: int) -> dict[str, Any]:
                return history_criteria(delivery_ids, self.config.delivery_states, self.history_field, size, page)

            try:
                rows, size = self._search("state-machine-history", criteria, limit)
                if size < limit:
                    self.history_limit = size
                return rows, size
            except UnknownField as exc:
                older = HISTORY_ID_FIELDS.index(self.history_field) + 1
                if exc.field not in self.history_field.split(".") or older >= len(HISTORY_ID_FIELDS):
                    raise
                self.context.log.info("shopware: the state machine history has no %s (Shopware 6.4); using %s",
                                      self.history_field, HISTORY_ID_FIELDS[older])
                self.history_field = HISTORY_ID_FIELDS[older]

    def _map(self, row: dict[str, Any], window: Window, cursor: str, shipped: dict[str, str]) -> Record | Rejected | str | None:
        """The order's record or rejection; else left out: its number if it is left out as it stands (an excluded
        channel, ``mapping.left_out``), whose dead letters then go (``Page.skipped``), None if for this window only."""
        number = str(row.get("orderNumber") or "") or None
        if channel_key(row.get("salesChannelId")) in self.config.exclude_sales_channels:
            self._skip(number, "sales channel excluded")
            return number
        try:
            result = map_order(row, self.config, window.start, cursor, shipped)
            for_good = result is None and left_out(row, self.config)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            return Rejected(location=f"shopware order {number} ({row.get('id')})", reason=f"unexpected data: {exc!r}", key=number)
        if result is None:
            self._skip(number, "order state not in order_states")
            return number if for_good else None
        for kind, label in unsent_lines(row, self.config).items() if isinstance(result, Record) else ():
            if first_time(self.config, f"unsent type {kind}"):  # once a process: a plugin's lines are in every order
                self.context.log.warning("shopware: line items of type %r (e.g. %r in order %s) are not sent and not in "
                                         "sub_total_price; if they are goods, set this source's deposit_line_item_type = %r",
                                         kind, label, number, kind)
        return self.numbers.admit(result, row) if isinstance(result, Record) else result

    def _skip(self, number: str | None, reason: str) -> None:
        """An order left out on purpose is no dead letter: counted in ``skipped`` by reason, with a debug line."""
        self.skipped[reason] += 1
        self.context.log.debug("shopware order %s not sent: %s", number, reason)


# Shopware 6.6's default cap; a page of 100 orders rarely has more transitions into or out of a shipped state.
HISTORY_LIMIT = 500
_NIL_ID = "0" * 32  # ``check`` probes the history search with an id no delivery has


def _key(row: dict[str, Any]) -> int:
    try:
        return int(row["autoIncrement"])
    except (KeyError, TypeError, ValueError):
        raise FatalError("Shopware returned an order without autoIncrement; cannot page safely") from None
