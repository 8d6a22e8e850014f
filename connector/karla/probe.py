"""Whether Karla takes the API key at all, asked when it refuses the key for a shop other than [karla].shop_slug.

Karla answers 401 both to a shop's own key used for another shop and to a wrong, deleted or expired key.
Called the first, a typo or a rotated key sent merchants looking for an organisation key; a read of
[karla].shop_slug (Search Orders, one result: it changes nothing) tells them apart. A key found working is
remembered for a minute, so the batches of one drain refused together ask once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import quote

import httpx

__all__ = ["KeyProbe"]

REMEMBER_SECONDS = 60.0


class KeyProbe:
    def __init__(self, http: httpx.Client, slug: str, clock: Callable[[], float], heard: Callable[[int], None]) -> None:
        self._http, self._slug, self._clock, self._heard = http, slug, clock, heard
        self._works_at: float | None = None  # on ``clock``: when Karla last took the key
        self._lock = threading.Lock()  # senders refused at once wait for one probe

    def key_works(self) -> bool | None:
        """True: Karla took the key for [karla].shop_slug (any answer but a 401, a 5xx or a timeout);
        False: it refused the key there too; None: no answer to go by (one attempt, no retries)."""
        with self._lock:
            if self._works_at is not None and self._clock() - self._works_at < REMEMBER_SECONDS:
                return True
            try:
                response = self._http.get(f"/shops/{quote(self._slug, safe='')}/orders", params={"per_page": 1})
            except httpx.HTTPError:
                return None
            self._heard(response.status_code)
            if response.status_code == 401:
                return False
            if response.status_code >= 500 or response.status_code in (408, 425, 429):
                return None
            self._works_at = self._clock()
            return True
