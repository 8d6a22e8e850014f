"""Pages Shopware cannot serve: one bad order, or a page too big to load, must not stop the source.

A 5xx or timeout that outlasts the client's retries is either an outage or this page: an order Shopware
cannot load (bad bytes in a row, a plugin's subscriber throwing) or more orders than PHP's memory or time
limit allows. Without this the same page failed on every poll and no later order was ever read. It lives
apart from the adapter because it is a self-contained recovery procedure (halve, probe with ``search-ids``,
exclude, name the dead letter) that the adapter's keyset scan only calls once per page (``orders_page``).
An outage stays an outage: nothing is skipped unless the requests around it succeed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from adapters.base import Rejected
from adapters.shopware.client import ShopwareClient
from adapters.shopware.config import ShopwareConfig
from adapters.shopware.criteria import Window, number_criteria, unloaded, window_criteria
from connector.errors import Aborted, ConnectorError, RetryableError, Unavailable

__all__ = ["MAX_UNSERVED", "first_id", "orders_page", "unserved_answer", "unserved_letter"]

MAX_UNSERVED = 5  # orders in a row Shopware cannot load before it counts as broken, not as a few bad orders

Log = logging.Logger | logging.LoggerAdapter
# The adapter's ``_search``: one page of ``criteria(size)`` and the size it took (lowered on the shop's cap).
Search = Callable[[str, Callable[[int], dict[str, Any]], int], tuple[list[dict[str, Any]], int]]


def unserved_answer(exc: Unavailable) -> bool:
    """A 500 or a timeout, as a page Shopware cannot load ends: worth trying a smaller page. Not a 502, 503
    or 504 (a proxy's word for an overloaded or absent shop: an outage), a 429, a refused connection or a stop."""
    cause = exc.__cause__
    if isinstance(exc, Aborted):
        return False
    return isinstance(cause, httpx.TimeoutException) or _bad_order(exc)


def _bad_order(exc: Unavailable) -> bool:
    """Only Shopware's own 500 names an order it cannot load; a timeout alone may be a slow shop, and an
    order skipped for it would be lost to Karla until it changes."""
    cause = exc.__cause__
    return isinstance(cause, RetryableError) and cause.status == 500


def orders_page(client: ShopwareClient, config: ShopwareConfig, log: Log, search: Search, window: Window, after: int,
                size: int) -> tuple[list[dict[str, Any]], int, int, dict[str, str]]:
    """One keyset page of at most ``size`` orders, its limit, the size last asked for, and the orders before it
    Shopware could not serve (order id -> Shopware's message; ``unserved_letter`` makes their dead letters).

    ``search-ids`` with the same criteria loads nothing: if it fails too, it is an outage and raises, nothing
    skipped. Else the page is halved until it loads (the caller keeps the size for this poll); an order that
    fails alone is named by ``search-ids`` with limit 1 and excluded, and rejected only once the request
    after it succeeds. More than ``MAX_UNSERVED`` in a row is no bad order but a broken shop.
    """
    unserved: dict[str, str] = {}  # order id -> Shopware's message
    probed = False
    while True:
        def criteria(limit: int) -> dict[str, Any]:
            return window_criteria(window, after, limit, config.order_states, list(unserved))

        try:
            rows, limit = search("order", criteria, size)
        except Unavailable as exc:
            if not unserved_answer(exc) or len(unserved) >= MAX_UNSERVED:
                raise
            probed = probed or bool(first_id(client, criteria(size), exc, once=True))  # an outage raises here
            if size > 1:
                log.warning("shopware: a page of %d orders failed (%s); trying %d", size, exc.__cause__, size // 2)
                size //= 2
                continue
            if not _bad_order(exc):
                raise
            unserved[first_id(client, criteria(1), exc)] = str(exc.__cause__)  # fails alone: the bad order
            continue
        return rows, limit, size, unserved


def first_id(client: ShopwareClient, criteria: dict[str, Any], failure: Unavailable, *, once: bool = False) -> str:
    """The first id ``search-ids`` finds for failed ``criteria``: the shop is up and the page has rows (that
    may be too many, or one bad). If it fails too or finds none, ``failure`` is raised: nothing is skipped."""
    try:
        ids = client.search_ids("order", unloaded(criteria), once=once)
    except ConnectorError:
        raise failure from None
    if not ids:
        raise failure
    return ids[0]


def unserved_letter(client: ShopwareClient, log: Log, ident: str, message: str) -> Rejected:
    """A dead letter for an order Shopware could not serve, named by its number when a bare read works."""
    try:
        rows = client.search("order", number_criteria(ident), once=True).get("data") or []
    except ConnectorError:
        rows = []
    number = str(rows[0].get("orderNumber") or "") or None if rows else None
    log.warning("shopware: order %s (%s) skipped, Shopware cannot serve it: %s", number or "?", ident, message)
    return Rejected(location=f"shopware order {number or '?'} ({ident})", key=number,
                    reason=f"Shopware cannot serve this order, so it was skipped ({message}); once the cause (bad "
                           "data in the order, a plugin) is fixed, it is read again when it next changes or by the next full sync")
