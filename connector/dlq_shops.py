"""Whom a dead letter's source and shop belong to now, for ``dlq retry`` (``connector.dlq``): the configuration
may have changed since the letter was written (a ``shop_slug`` corrected, a source renamed or removed)."""

from __future__ import annotations

from connector.app import Connector
from connector.logs import printable, redact
from state import DeadLetterRow

__all__ = ["RESEND", "for_no_shop", "shops_now", "unusable"]

# What a letter for a shop no source sends to any more asks of the user (the sender's letter says it too): its
# data may be older than what the right shop has had since, so nothing sends it anywhere on its own.
RESEND = ("`sync --full` reads the order again for the shop now configured (a CSV source that archived or deleted "
          "its files since: move them back into the source's folder first; with delete they are gone: check the order "
          "in Karla)")


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


def _unsent_shop(row: DeadLetterRow) -> bool:
    """Whether the sender wrote this letter because no source sent to its shop any more: its ``details`` say so
    (``"no_source": true``), an older letter its reason. Not any letter of a shop missing from the config: a
    plugin routes records to shops it need not declare, and a shop removed on purpose keeps its letters."""
    tagged = isinstance(row.details, dict) and row.details.get("no_source") is True
    return row.stage == "karla" and (tagged or "and no source sends to it any more" in (row.reason or ""))


def for_no_shop(connector: Connector, row: DeadLetterRow, shops: set[str]) -> str | None:
    """Why ``dlq retry`` keeps this letter (None: it goes to its own shop as any other). Sent to the shop its
    source sends to now it could replace the newer version that shop has had since, or send a routed order to
    another brand's shop; the source's order read again as it is now is what goes."""
    if row.slug in shops or not _unsent_shop(row):
        return None
    gone = f", and {why}" if (why := unusable(connector, row.source)) else ""
    return f"no source sends to shop {row.slug!r} any more{gone}: {RESEND}"
