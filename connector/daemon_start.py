"""What the daemon says as it starts: which sources run, and settings that will bite at the first stop."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["log_started", "warn_short_grace"]

log = logging.getLogger("connector.daemon")


def log_started(connector: Any) -> None:
    """Counts every configured source, a plugin that failed to load too: "1 of 1" with two configured hid it."""
    enabled = sum(rt.config.enabled for rt in connector.sources.values())
    broken = connector.broken
    log.info("daemon started with %d enabled source(s) of %d%s", enabled, len(connector.settings.sources),
             f"; {len(broken)} not loaded: {', '.join(broken)} (see /readyz or `karla-connector check`)" if broken else "")


def warn_short_grace(connector: Any) -> None:
    """A grace no longer than a request's timeout cuts a request on the wire short at every stop: its
    answer goes unrecorded and its orders are sent again (0.1.0's example set 30 s, Karla's timeout)."""
    settings = connector.settings
    grace = settings.daemon.shutdown_grace_seconds
    timeouts = {"[karla] timeout_seconds": settings.karla.timeout_seconds}
    for rt in connector.sources.values():
        if not rt.config.enabled:
            continue
        for table, config in ((f"sources.{rt.name}", rt.config), (f"sources.{rt.name}.sftp", getattr(rt.config, "sftp", None))):
            if isinstance(timeout := getattr(config, "timeout_seconds", None), (int, float)):
                timeouts[f"[{table}] timeout_seconds"] = timeout
    longest = max(timeouts, key=timeouts.__getitem__)
    if grace <= timeouts[longest]:
        log.warning("[daemon] shutdown_grace_seconds = %s is not longer than %s = %s: a stop may cut a request short "
                    "and its work is done again; set it above %s", grace, longest, timeouts[longest], timeouts[longest])
