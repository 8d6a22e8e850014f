"""Errors grouped by what the engine does next, and the one HTTP status -> action table.

    ConnectorError
    ├── RetryableError        wait (honouring Retry-After) and try again; in the outbox it stays pending
    │   └── Unavailable       retries exhausted: the run ends with exit code 3, nothing is lost
    ├── FatalError            stop this source / the delivery; a human must act
    │   └── ConfigError       bad or missing configuration or credentials (exit code 2)
    ├── RecordRejected        this record goes to the dead-letter store, its neighbours go on
    └── BatchTooLarge         413: split the batch and send the halves
"""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = [
    "Action",
    "BatchTooLarge",
    "ConfigError",
    "ConnectorError",
    "FatalError",
    "RecordRejected",
    "RetryableError",
    "Unavailable",
    "action_for_status",
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


class FatalError(ConnectorError):
    """Cannot go on without a human; never retried."""


class ConfigError(FatalError):
    """Configuration or credentials are wrong; the message names the key or credential."""


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


_TABLE: dict[int, Action] = {
    408: Action.RETRY,
    425: Action.RETRY,
    429: Action.RETRY,
    413: Action.SPLIT,
    400: Action.FATAL,
    401: Action.FATAL,
    403: Action.FATAL,
    404: Action.REJECT,
    409: Action.REJECT,
    422: Action.REJECT,
}


def action_for_status(status: int) -> Action:
    """The single place that decides what an HTTP status means for the engine."""
    if 200 <= status < 300:
        return Action.OK
    if status in _TABLE:
        return _TABLE[status]
    if status >= 500:
        return Action.RETRY
    return Action.FATAL
