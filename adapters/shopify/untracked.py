"""Parcels with a tracking link but no tracking number: said once per order, not dropped in silence.

An app of a local courier may set only a URL on a fulfillment (``FulfillmentTrackingInfo.number`` null).
Karla follows a parcel by its number, so such a parcel is not sent (``mapping._trackings``); the order stays
watched in case a number is added later (``awaits_tracking``). Without a line the merchant could not tell
why Karla never shows the parcel. Only the link's host is named: a tracking link may carry a token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from adapters.shopify.mapping import live_fulfillments

__all__ = ["link_only_hosts", "tell_link_only", "forget_told"]

# Orders already named in this process: the engine builds an adapter per run, and polls and the nightly
# full sync read the same orders again. Bounded: a long-running daemon starts over rather than grow.
_TOLD: set[tuple[str, str]] = set()
_TOLD_LIMIT = 10_000


def _host(url: str) -> str:
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:  # a malformed link ("http://[x"): still worth saying, without echoing it
        host = None
    return host or "a link without a host"


def link_only_hosts(node: dict[str, Any]) -> list[str]:
    """The hosts of the tracking links of the order's live parcels that carry no tracking number."""
    return sorted({
        _host(str(info["url"])) for fulfillment in live_fulfillments(node) for info in fulfillment.get("trackingInfo") or []
        if info.get("url") and not str(info.get("number") or "").strip()
    })


def tell_link_only(nodes: Iterable[dict[str, Any]], shop: str, log: logging.Logger | logging.LoggerAdapter) -> None:
    """One WARNING per order (and process) whose parcel has a tracking link but no number: the merchant can add it."""
    for node in nodes:
        hosts = link_only_hosts(node)
        told = (shop, str(node.get("id")))
        if not hosts or told in _TOLD:
            continue
        if len(_TOLD) >= _TOLD_LIMIT:
            _TOLD.clear()
        _TOLD.add(told)
        log.warning("Shopify %s: order %s has a parcel with a tracking link (%s) but no tracking number, so it is not sent "
                    "to Karla, which follows parcels by their number; add the number to the fulfillment in Shopify (or "
                    "have the courier's app set it)", shop, node.get("name"), ", ".join(hosts))


def forget_told() -> None:
    """A fresh process's memory (tests)."""
    _TOLD.clear()
