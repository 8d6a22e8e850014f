"""The shopware stream's cursor: ``{"window_end": ISO}``, plus ``"scan": {"start", "end", "after"}`` in the
middle of a window (see the adapter's docstring), and the millisecond times it is written in."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from adapters.shopware.criteria import Window

__all__ = ["iso", "load_cursor", "ms"]


def ms(moment: datetime) -> datetime:
    """In UTC and whole milliseconds (Shopware's precision)."""
    return moment.astimezone(timezone.utc).replace(microsecond=moment.microsecond // 1000 * 1000)


def _utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def load_cursor(cursor: str | None, log: logging.Logger | logging.LoggerAdapter) -> tuple[datetime | None, tuple[Window, int] | None]:
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
        log.warning("shopware: unreadable cursor %r; reading from the initial start again", cursor[:200])
        return None, None
