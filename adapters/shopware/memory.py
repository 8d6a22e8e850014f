"""What the ``shopware`` source keeps for the process, per shop (base URL and integration), not per adapter.

The engine builds a new adapter every poll, so anything kept on the adapter was forgotten each poll: the
state names were looked up again (one more search, a 403 without ``state_machine:read``) and their WARNING,
like the one about unsent line item types, repeated every poll, ~1,440 a day at 60 s. A changed config
needs a restart, so once a process is once per config.
"""

from __future__ import annotations

import threading
from typing import Any

from adapters.shopware.config import ShopwareConfig

__all__ = ["first_time", "forget", "keep", "kept"]

_SAID: set[tuple[str, str, str]] = set()  # (base_url, client_id, what) said by this process
_KEPT: dict[tuple[str, str, str], tuple[float, Any]] = {}  # (base_url, client_id, what) -> (monotonic when, value)
_LOCK = threading.Lock()  # sources may poll in threads


def _shop(config: ShopwareConfig, what: str) -> tuple[str, str, str]:
    return str(config.base_url), str(config.client_id), what


def first_time(config: ShopwareConfig, what: str) -> bool:
    """True once per process for ``what`` about this shop: the caller then says it."""
    key = _shop(config, what)
    with _LOCK:
        if key in _SAID:
            return False
        _SAID.add(key)
        return True


def kept(config: ShopwareConfig, what: str, now: float, ttl: float) -> tuple[bool, Any]:
    """(found, value) kept for this shop less than ``ttl`` seconds ago (``now`` from the same monotonic clock)."""
    with _LOCK:
        entry = _KEPT.get(_shop(config, what))
    if entry is None or now - entry[0] >= ttl:
        return False, None
    return True, entry[1]


def keep(config: ShopwareConfig, what: str, now: float, value: Any) -> None:
    with _LOCK:
        _KEPT[_shop(config, what)] = (now, value)


def forget() -> None:
    """Start afresh, as a new process (tests: the fakes of different tests share URLs and integration ids)."""
    with _LOCK:
        _SAID.clear()
        _KEPT.clear()
