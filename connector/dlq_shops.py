"""Whom a dead letter's source and shop belong to now, for ``dlq retry`` (``connector.dlq``): the configuration
may have changed since the letter was written (a ``shop_slug`` corrected, a source renamed or removed)."""

from __future__ import annotations

from dataclasses import replace

from connector.app import Connector
from connector.logs import printable, redact
from state import DeadLetterRow

__all__ = ["shops_now", "to_shop_now", "unusable"]


def shops_now(connector: Connector) -> set[str]:
    """The shops some source sends to; one not valid here (a secret only the service can read) by its table."""
    tables = [connector.settings.sources.get(name) or {} for name in (*connector.broken, *connector.disabled)]
    named = {slug for t in tables for slug in (t.get("shop_slug"), *dict(t.get("sales_channels") or {}).values())}
    return connector._shops() | {str(slug) for slug in named if slug}


def unusable(connector: Connector, source: str) -> str | None:
    """Why ``source`` cannot be read (None: it can): a letter of a renamed source kept its old name."""
    if source in connector.sources:
        return None
    if (why := connector.broken.get(source) or connector.disabled.get(source)) is not None:
        return f"source {source!r} is not valid as configured ({printable(redact(why))})"
    return f"source {source!r} is no longer configured (renamed or removed?)"


def to_shop_now(connector: Connector, row: DeadLetterRow) -> DeadLetterRow | str:
    """The letter for the one shop its source sends to now, or why it cannot be: a source sending to several
    (Shopware's ``sales_channels``) does not say which one the order's channel is, and guessing sends an
    order to another shop."""
    if (why := unusable(connector, row.source)) is not None:
        return f"no source sends to shop {row.slug!r} any more, and {why}: `sync --full` reads it again for its shop"
    rt = connector.sources[row.source]
    targets = sorted(rt.config.shop_slugs() | {rt.slug})
    if len(targets) > 1:
        return (f"no source sends to shop {row.slug!r} any more, and source {row.source!r} sends to several "
                f"({', '.join(targets)}), which of them is this order's the letter does not say: `sync --full` reads "
                "it again for its shop")
    return replace(row, slug=targets[0])
