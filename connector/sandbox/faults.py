"""What the sandbox can be told to do wrong, and what it remembers of each request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Faults", "RequestLog", "Scripted", "error"]


@dataclass(slots=True)
class Faults:
    """Random faults for order writes, reproducible with ``seed``."""

    error_rate: float = 0.0  # of order writes
    down: bool = False  # every request, reads included, answers 503: Karla is down, not one write failing
    error_statuses: tuple[int, ...] = (500, 502, 503)
    rate_limit_rate: float = 0.0
    retry_after: float | None = None
    delay: float = 0.0
    seed: int = 0


@dataclass(frozen=True, slots=True)
class RequestLog:
    method: str
    path: str
    status: int
    body_bytes: int
    items: int
    at: float
    retry_after: str | None = None  # the Retry-After answered
    karla_version: str | None = None  # the Karla-Version header sent


@dataclass(slots=True)
class Scripted:
    """An answer chosen by a test; ``body`` None means Karla's error shape with key ``sandbox_fault``."""

    status: int
    retry_after: float | None
    body: Any = None  # dict/list → JSON; str/bytes → sent as is, with ``content_type``
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def error(key: str, message: str, errors: list[dict[str, Any]] | None = None, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"key": key, "message": message, "type": type_, "errors": errors or []}
