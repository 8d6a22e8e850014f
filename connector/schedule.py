"""Time zones and cron expressions, checked the way the daemon schedules with them.

Kept apart from the settings because adapters validate their own ``full_sync_cron`` with it
(``adapters.base.SourceConfig``) without loading the connector's settings.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["check_timezone", "cron_trigger"]


def check_timezone(value: str) -> str:
    """``value`` if it names an IANA time zone, else ``ValueError`` saying what to write instead."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin or UTC") from None
    return value


def cron_trigger(expression: str, timezone: str = "UTC") -> Any:
    """The APScheduler ``CronTrigger`` for a ``full_sync_cron`` value; ``ValueError`` says what is wrong.

    Five fields as in crontab; six fields put seconds first (handy for tests and short cycles). The daemon
    schedules with this and ``SourceConfig`` validates with it, so whatever loads also runs. APScheduler is
    imported here, on first use, not when an adapter module is imported.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(expression, timezone=timezone)
        if len(fields) == 6:
            second, minute, hour, day, month, dow = fields
            return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=dow, timezone=timezone)
    except ValueError as exc:
        raise ValueError(f"{expression!r}: {exc}") from None
    raise ValueError(
        f"{expression!r}: expected 5 crontab fields (minute hour day month weekday, e.g. \"0 2 * * *\") "
        f"or 6 with seconds first; got {len(fields)}"
    )
