"""Errors grouped by what the engine does next, and the one HTTP answer -> action table.

    ConnectorError
    ├── RetryableError        wait (honouring Retry-After) and try again; in the outbox it stays pending
    │   └── Unavailable       retries exhausted: the run ends with exit code 3, nothing is lost
    │       └── Aborted       retrying cut short on purpose (shutdown, or another call found Karla down)
    ├── FatalError            stop this source / the delivery; a human must act; everything stays pending
    │   └── ConfigError       bad or missing configuration or credentials (exit code 2)
    ├── RecordRejected        this record goes to the dead-letter store, its neighbours go on
    └── BatchTooLarge         413: split the batch and send the halves

``action_for(status, key, names_item)`` decides, from the status, Karla's ``key`` and whether
``errors[].loc`` names an item index (``["body", 3, ...]``), checked in this order:

    answer                                                        action   what happens
    2xx, whatever the body (also a proxy's text/plain "OK")       OK       delivered
    413                                                           SPLIT    halve the batch
    408, 425, 429, 5xx but 501 (and transport errors, retry.py)   RETRY    backoff, then Unavailable
    an auth key: invalid_merchant_or_key (400/401),               FATAL    ConfigError naming the
      insufficient_rights / permission_denied (403),                       credential or shop_slug
      shop_not_found (404); a setup key: shop_settings_not_found,          (a setup key: that shop
      shop_fixtures_not_found (404); and any 401 or 403                    waits, ShopRefused)
    422 (any key); a record key: order_not_found, order_exists,   REJECT   bisect to the item Karla
      shipment_not_found, shipment_exists (404/409),                       refused; it becomes a dead
      image_media_unsupported (415), invalid_payload,                      letter with Karla's message
      zip_code_invalid, carrier_reference_invalid (422);                   (order_not_found for a
      or any other 4xx whose errors[].loc names an item index              tracking: it waits)
    anything else: a 404/409 naming no record (a wrong base_url   FATAL    stop; truthful message
      or a proxy's or framework's route 404), 3xx, 400/410/415,
      501 (service_not_implemented: retrying cannot help)
      without a record key, other unknown statuses

A fatal auth answer for one shop (``shop_not_found``; a shop not set up yet, ``SETUP_KEYS``; a 400/401/403
for a shop other than ``[karla].shop_slug``, whose key may be that shop's own, not an organisation key; any
403) is ``ShopRefused``: only that shop's orders wait. A 400/401 for ``[karla].shop_slug`` itself, or for
another shop while a read of ``[karla].shop_slug`` gets a 401 too (``connector.karla.probe``: the key itself
is refused), is a ``ConfigError`` that stops every shop.

Why an unknown answer is fatal and not a rejection: a fatal stop keeps every order pending, so nothing
is lost and the next run after a human's fix delivers everything; a wrong rejection bisects every batch
and dead-letters the whole outbox (recoverable with ``dlq retry``, but only after the damage).
Callers without a body to read (``action_for_status``) get the same table with no key.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = [
    "AUTH_KEYS",
    "Aborted",
    "Action",
    "RECORD_KEYS",
    "SETUP_KEYS",
    "BatchTooLarge",
    "ConfigError",
    "ConnectorError",
    "FatalError",
    "RecordRejected",
    "ShopRefused",
    "RetryableError",
    "Unavailable",
    "action_for",
    "action_for_status",
    "item_index",
]


class ConnectorError(Exception):
    """Root of every error the connector raises on purpose."""


class RetryableError(ConnectorError):
    """A transient failure; ``retry_after`` is the server's requested pause in seconds, if it named one."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class Unavailable(RetryableError):
    """A dependency stayed unavailable for the whole retry budget."""


class Aborted(Unavailable):
    """Retrying was cut short on purpose: a shutdown, or another call already found the dependency down.

    Nothing is lost (the work stays pending); a call that was never sent raises it too."""


class FatalError(ConnectorError):
    """Cannot go on without a human; never retried."""


class ConfigError(FatalError):
    """Configuration or credentials are wrong; the message names the key or credential."""


class ShopRefused(ConfigError):
    """Karla refuses one shop (it does not exist, or the key has no rights for it or is not its key). Its
    orders wait; other shops' orders are still delivered, and the run ends with this error once they are."""

    def __init__(self, message: str, *, slug: str) -> None:
        super().__init__(message)
        self.slug = slug


class RecordRejected(ConnectorError):
    """One record cannot be used (bad source row, or Karla refused it); it becomes a dead letter."""

    def __init__(self, message: str, *, key: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.key = key
        self.details = details


class BatchTooLarge(ConnectorError):
    """The server refused the request body as too large (HTTP 413)."""


class Action(str, Enum):
    OK = "ok"
    RETRY = "retry"
    SPLIT = "split"
    FATAL = "fatal"
    REJECT = "reject"


_RETRY_STATUSES = frozenset({408, 425, 429})
# Karla's "Errors" page: keys that say the credentials, their rights or the shop are wrong ...
AUTH_KEYS = frozenset({"invalid_merchant_or_key", "insufficient_rights", "permission_denied", "shop_not_found"})
# ... that say Karla knows the shop but it is not set up yet (karla-docs 003, 404): one shop waits, not a base_url ...
SETUP_KEYS = frozenset({"shop_settings_not_found", "shop_fixtures_not_found"})
# ... and keys that say one order (or its shipment, image or fields) is refused: the rest of a batch is fine.
RECORD_KEYS = frozenset({
    "order_not_found", "order_exists", "shipment_not_found", "shipment_exists",
    "image_media_unsupported", "invalid_payload", "zip_code_invalid", "carrier_reference_invalid",
})


def action_for(status: int, key: str | None = None, *, names_item: bool = False) -> Action:
    """The single place that decides what an HTTP answer means for the engine (table in the module docstring)."""
    if 200 <= status < 300:
        return Action.OK
    if status == 413:
        return Action.SPLIT
    if status in _RETRY_STATUSES or (status >= 500 and status != 501):
        return Action.RETRY
    if key in AUTH_KEYS or key in SETUP_KEYS or status in (401, 403):
        return Action.FATAL
    if 400 <= status < 500 and (status == 422 or key in RECORD_KEYS or names_item):
        return Action.REJECT
    return Action.FATAL


def action_for_status(status: int) -> Action:
    """``action_for`` for a caller that has no body to read: a bare 404/409 is then fatal, 422 a rejection."""
    return action_for(status)


def item_index(entry: Any) -> int | None:
    """The bulk item an ``errors[]`` entry names (``loc == ["body", 3, ...]``), else None."""
    loc = entry.get("loc") if isinstance(entry, dict) else None
    if isinstance(loc, list) and len(loc) > 1 and loc[0] == "body" and type(loc[1]) is int:
        return loc[1]
    return None
