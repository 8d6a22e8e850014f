"""Order numbers two sales channels can both issue, which Karla cannot tell apart.

Shopware can give a sales channel its own order number range (Settings > Number ranges; the generator takes
the channel's range, else the global one). Two ranges with the same pattern (both ``{n}``) count up apart, so
two channels can both issue 10000. Karla keeps one order per number and shop ("order_number must be unique
per shop"), so when both channels go to one Karla shop the later order silently replaces the earlier.

``number_facts`` (``check``, and the daemon's first poll) reads the order number ranges and names channels
of one Karla shop that take numbers from different ranges with the same pattern; without
``number_range:read`` it says they could not be checked. ``NumberGuard`` catches what gets through within one
read: a second order with a number already read for the same Karla shop is a dead letter naming both.
Both group channels by the Karla shop their orders end up in: an unlisted channel's is the source's
``default`` (its shop_slug, else [karla].shop_slug), so a channel listed with that same slug is one shop with it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from adapters.base import Record, Rejected
from adapters.shopware.client import LimitExceeded, MissingPrivilege, ShopwareClient
from adapters.shopware.config import ShopwareConfig, channel_key
from connector.errors import Aborted, ConnectorError

__all__ = ["NumberGuard", "clashes", "number_facts", "range_criteria"]

Entity = dict[str, Any]
_LIMIT = 500  # number ranges and sales channels: a handful per shop


def range_criteria() -> dict[str, Any]:
    """The order number ranges with the sales channels assigned to each (``number_range:read``)."""
    return {"limit": _LIMIT, "total-count-mode": 0,
            "filter": [{"type": "equals", "field": "type.technicalName", "value": "order"}],
            "associations": {"numberRangeSalesChannels": {}},
            "includes": {"number_range": ["id", "name", "translated", "pattern", "global", "numberRangeSalesChannels"],
                         "number_range_sales_channel": ["salesChannelId"]}}


def _name(entity: Entity) -> str:
    return str((entity.get("translated") or {}).get("name") or entity.get("name") or entity.get("id"))


def _channel(row: Entity) -> str:
    """An order's sales channel as a merchant knows it: its name and id (interned: one string per channel)."""
    key, name = channel_key(row.get("salesChannelId")), ((row.get("salesChannel") or {}).get("translated") or {}).get("name")
    return sys.intern(f"{name or (row.get('salesChannel') or {}).get('name') or 'unnamed'} ({key})")


def clashes(ranges: list[Entity], channels: list[Entity], config: ShopwareConfig, default: str | None = None) -> list[str]:
    """Warnings for channels sent to one Karla shop whose order numbers come from different ranges with the
    same pattern. A channel without a range of its own uses the global one; excluded channels send nothing;
    unlisted ones go to ``default`` (None: this source's shop, unnamed)."""
    fallback = next((r for r in ranges if r.get("global")), None)
    assigned = {channel_key(a.get("salesChannelId")): r for r in ranges for a in r.get("numberRangeSalesChannels") or []}
    shops: dict[str | None, dict[str, dict[Any, list[str]]]] = {}  # Karla shop -> pattern -> range id -> channels
    for channel in channels:
        key = channel_key(channel.get("id"))
        used = assigned.get(key) or fallback
        if used is None or key in config.exclude_sales_channels:
            continue
        pattern = "".join(str(used.get("pattern") or "{n}").split())
        by_range = shops.setdefault(config.sales_channels.get(key) or default, {}).setdefault(pattern, {})
        by_range.setdefault(used.get("id"), []).append(f"{_name(channel)} ({key})")
    names = {r.get("id"): _name(r) for r in ranges}
    found = []
    for shop, patterns in shops.items():
        for pattern, by_range in patterns.items():
            if len(by_range) < 2:
                continue
            where = f"Karla shop {shop!r}" if shop else "this source's Karla shop"
            uses = "; ".join(f"{', '.join(chans)} from {names.get(ident)!r}" for ident, chans in by_range.items())
            found.append(f"sales channels sent to {where} take order numbers from different number ranges with the same "
                         f"pattern {pattern!r} ({uses}): two of their orders can have the same number, and Karla keeps "
                         "only one; send the channels to separate Karla shops (this source's sales_channels) or give the "
                         "ranges distinct prefixes (Settings > Number ranges)")
    return found


def number_facts(client: ShopwareClient, config: ShopwareConfig, log: logging.Logger | logging.LoggerAdapter,
                 default: str | None = None) -> list[str]:
    """``check``'s lines on order numbers; each clash is logged as a WARNING too. A range search Shopware
    refuses (no ``number_range:read``, an older version) is said, never a failed check: orders still sync.
    ``default``: the Karla shop of unlisted channels (``clashes``)."""
    try:
        ranges = client.search("number-range", range_criteria()).get("data") or []
        every = {"limit": _LIMIT, "total-count-mode": 0, "includes": {"sales_channel": ["id", "name", "translated"]}}
        channels = client.search("sales-channel", every).get("data") or []
    except Aborted:
        raise
    except (MissingPrivilege, LimitExceeded, ConnectorError) as exc:
        privilege = " (grant number_range:read)" if isinstance(exc, MissingPrivilege) else ""
        unchecked = (f"order number ranges not checked{privilege}: {exc}; two sales channels sent to one Karla shop "
                     "must not issue the same order numbers")
        log.info("shopware: %s", unchecked)
        return [unchecked]
    found = clashes(ranges, channels, config, default)
    for warning in found:
        log.warning("shopware: %s", warning)
    return [f"warning: {w}" for w in found] or ["order number ranges: no two sales channels of one Karla shop share a pattern"]


GUARDED = 50_000  # orders a read remembers numbers of (``NumberGuard``)


class NumberGuard:
    """The orders read lately in one read by Karla shop and number, so a second order with a number already
    read (another sales channel's range) becomes a dead letter instead of replacing the first in Karla. Kept
    for one read and for the last ``GUARDED`` orders only (an order id and a channel name each, a few MB): a
    nightly full sync of a million orders must not hold them all. ``check``'s range review covers the rest."""

    def __init__(self, default: str | None = None) -> None:
        self.default = default  # the Karla shop of a record without shop_slug (an unlisted channel's), if known
        self.seen: dict[tuple[str | None, str], tuple[str, str]] = {}  # insertion order: the oldest first

    def admit(self, record: Record, row: Entity) -> Record | Rejected:
        ident = str(row.get("id") or "")
        channel = _channel(row)
        first, first_channel = self.seen.setdefault((record.shop_slug or self.default, record.key), (ident, channel))
        if len(self.seen) > GUARDED:
            del self.seen[next(iter(self.seen))]
        if first == ident:
            return record
        return Rejected(location=record.location, key=record.key, reason=(
            f"order number {record.key} is also Shopware order {first} (sales channel {first_channel}), read before this "
            f"one ({ident}, sales channel {channel}): Karla keeps one order per number and shop, so this one would replace "
            "it; send the sales channels to separate Karla shops (sales_channels) or give their number ranges distinct "
            "prefixes, then run a full sync (sync --full)"))
