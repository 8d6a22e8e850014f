"""Time zones and cron expressions, checked the way the daemon schedules with them.

Kept apart from the settings because adapters validate their own ``full_sync_cron`` with it
(``adapters.base.SourceConfig``) without loading the connector's settings.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["check_timezone", "cron_trigger", "crontab_weekdays"]


def check_timezone(value: str) -> str:
    """``value`` if it names an IANA time zone, else ``ValueError`` saying what to write instead."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin or UTC") from None
    return value


def cron_trigger(expression: str, timezone: str = "UTC") -> Any:
    """The APScheduler ``CronTrigger`` for a ``full_sync_cron`` value; ``ValueError`` says what is wrong.

    Five fields as in crontab, day of week included (``crontab_weekdays``); six fields put seconds first
    (handy for tests and short cycles). The daemon schedules with this and ``SourceConfig`` validates with it,
    so whatever loads also runs. APScheduler is imported here, on first use, not when an adapter module is.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    try:
        if len(fields) in (5, 6):
            second, minute, hour, day, month, dow = fields if len(fields) == 6 else ["0", *fields]
            _no_day_or_weekday(day, dow)
            return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                               day_of_week=crontab_weekdays(dow), timezone=timezone)
    except ValueError as exc:
        raise ValueError(f"{expression!r}: {exc}") from None
    raise ValueError(
        f"{expression!r}: expected 5 crontab fields (minute hour day month weekday, e.g. \"0 2 * * *\") "
        f"or 6 with seconds first; got {len(fields)}"
    )


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab's numbering: 0 (and 7) is Sunday
_ITEM = re.compile(r"(?P<range>\*|(?P<first>\w+)(?:-(?P<last>\w+))?)(?:/(?P<step>\d+))?")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field as APScheduler reads it: APScheduler 3 counts 0 as Monday, so ``0`` ran on
    Mondays, ``1-5`` Tuesday to Saturday and ``7`` was refused. Each item is expanded with crontab's meaning
    (0 and 7 Sunday, names too, ranges, lists, steps) and the days are handed over by name."""
    days: set[int] = set()
    for item in field.lower().split(","):
        days |= _expand(item)
    if len(days) == len(_DAYS):
        return "*"
    return ",".join(_DAYS[d] for d in sorted(days))


def _expand(item: str) -> set[int]:
    """One item of a day-of-week list: ``*``, ``N``, ``N-M`` or a name, with an optional ``/STEP``. A step
    runs over the range as crontab's does (``*`` is 0-7, ``N/STEP`` is N-7), so ``*/2`` is Sun, Tue, Thu, Sat."""
    match = _ITEM.fullmatch(item)
    if not match:
        raise ValueError(f"day of week {item!r}: expected a number 0-7 (0 and 7 are Sunday), a name such as mon, "
                         "a range such as 1-5, or */STEP")
    step = int(match["step"] or 1)
    if step < 1:
        raise ValueError(f"day of week {item!r}: the step must be at least 1")
    if match["range"] == "*":
        first, last = 0, 7
    else:
        first = _day(match["first"])
        last = _day(match["last"]) if match["last"] else 7 if match["step"] else first
    if first > last:
        raise ValueError(f"day of week {item!r}: the range runs backwards; write it as a list, e.g. fri,sat,sun")
    return {d % 7 for d in range(first, last + 1, step)}


def _day(token: str) -> int:
    """0-7 or a three-letter name, as crontab reads it."""
    if token in _DAYS:
        return _DAYS.index(token)
    if token.isdigit() and int(token) <= 7:
        return int(token)
    raise ValueError(f"day of week {token!r} is not 0-7 (0 and 7 are Sunday) or a name such as mon")


def _no_day_or_weekday(day: str, weekday: str) -> None:
    """Crontab runs on either day when both the day of month and the weekday are restricted (neither starts
    with ``*``); APScheduler only on days matching both. Refused rather than run on other days than meant."""
    if not day.startswith("*") and not weekday.startswith("*"):
        raise ValueError(
            f"day of month {day!r} and day of week {weekday!r} are both set: crontab runs on either, this scheduler "
            "only on days matching both; set one of them to *"
        )
