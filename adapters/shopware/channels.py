"""``check``'s word on the configured sales channels (``sales_channels`` and ``exclude_sales_channels``).

A typo'd channel id is no config error (any string is a valid key), yet it would silently route that
channel's orders to ``shop_slug`` (or fail to exclude them). So ``check`` names each configured channel as
Shopware knows it and warns about ids Shopware does not have; this also proves the ``sales_channel:read``
privilege the order search needs. Kept apart from the adapter: only ``check`` uses it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from adapters.shopware.client import ShopwareClient
from adapters.shopware.config import ShopwareConfig, channel_key
from adapters.shopware.criteria import channel_criteria

__all__ = ["channel_facts"]

_HEX_ID = re.compile(r"[0-9a-f]{32}")


def _name(entity: dict[str, Any]) -> Any:
    return (entity.get("translated") or {}).get("name") or entity.get("name")


def channel_facts(client: ShopwareClient, config: ShopwareConfig, log: logging.Logger | logging.LoggerAdapter) -> list[str]:
    """The configured sales channels by name and route, and a warning per id Shopware does not have."""
    routes = {**config.sales_channels, **{c: "" for c in config.exclude_sales_channels}}
    if not routes:
        return []
    ids = [c for c in routes if _HEX_ID.fullmatch(c)]  # anything else cannot be an id (and is a 400 in a filter)
    rows = client.search("sales-channel", channel_criteria(ids)).get("data") or [] if ids else []
    names = {channel_key(r.get("id")): str(_name(r)) for r in rows}
    known = [f"{names[c]} ({c}) {'-> ' + slug if slug else 'excluded'}" for c, slug in routes.items() if c in names]
    facts = [f"sales channels: {'; '.join(known) or 'none found'}"]
    for channel in (c for c in routes if c not in names):
        facts.append(f"warning: sales channel {channel} is configured but does not exist in Shopware")
        log.warning("shopware: sales channel %s is configured but does not exist in Shopware", channel)
    return facts
