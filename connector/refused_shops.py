"""The daemon's shops Karla refuses (``ShopRefused``): only their orders wait, and are tried again hourly.

An hourly pause of all delivery after one shop's refusal (say, a shop's own key sending to another shop)
held back every shop's new orders for an hour, and /readyz said all of Karla needed a human. Here each
refused shop has its own "not before" time, /readyz entry and log episode; the other shops' orders keep
going at the delivery interval, and a different failure meanwhile is still said at ERROR.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from connector.job_errors import Episodes
from connector.logs import redact
from connector.readiness import Readiness

__all__ = ["FATAL_RETRY_SECONDS", "RefusedShops"]

FATAL_RETRY_SECONDS = 3600.0  # after a refused key or shop: one request an hour, not one per drain
SHOP_WAITS = ("Only this shop's orders wait, tried again hourly; the other shops' orders go on. A changed setting "
              "takes effect once the service is restarted (the configuration is read only at start)")


class RefusedShops:
    def __init__(self, episodes: Episodes, now: Callable[[], float], log: logging.Logger) -> None:
        self._episodes, self._now, self._log = episodes, now, log
        self._not_before: dict[str, float] = {}  # by slug: the drains leave its orders out until then
        self._lock = threading.Lock()

    def waiting(self) -> frozenset[str]:
        """The shops whose orders this drain leaves out: refused less than an hour ago."""
        now = self._now()
        with self._lock:
            return frozenset(slug for slug, until in self._not_before.items() if now < until)

    def refused(self, shops: Mapping[str, Exception], readiness: Readiness) -> None:
        """Karla refused these shops (by slug) in a drain: leave them out for an hour, say so once."""
        for slug, exc in shops.items():
            with self._lock:
                self._not_before[slug] = self._now() + FATAL_RETRY_SECONDS
            readiness.fatal(_name(slug), redact(str(exc)))  # not ready at once: waiting cannot fix it
            self._episodes.say(f"shop:{slug}", logging.ERROR, "delivery to shop %r stopped: %s. %s",
                               slug, exc, SHOP_WAITS)

    def answered(self, requests: Mapping[str, int], readiness: Readiness) -> None:
        """Karla answered requests for these shops (by slug) without refusing them: a refused one is fixed."""
        with self._lock:
            fixed = [slug for slug in self._not_before if requests.get(slug)]
            for slug in fixed:
                del self._not_before[slug]
        for slug in fixed:
            readiness.succeeded(_name(slug))
            if self._episodes.over(f"shop:{slug}"):
                self._log.info("delivery to shop %r resumed: Karla takes its orders again", slug)


def _name(slug: str) -> str:
    """Its entry in /readyz's problems."""
    return f"shop {slug}"
