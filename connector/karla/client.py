"""The Karla HTTP client: Basic auth, one status table, the shared retry policy, request accounting.

Bodies can be passed pre-serialised (``bulk_upsert_raw``) so delivery serialises each payload exactly once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from connector.errors import Action, BatchTooLarge, ConfigError, RecordRejected, RetryableError, action_for_status
from connector.karla.models import OrderFulfillment, dump
from connector.retry import RetryPolicy, call_with_retries, make_retrying, parse_retry_after
from connector.settings import KarlaSettings

__all__ = ["KarlaClient", "KarlaStats", "error_body"]

log = logging.getLogger(__name__)
_VERSION = "0.1.0"


@dataclass(slots=True)
class KarlaStats:
    """What this client did: the demo, ``sync`` summaries and the metrics read it."""

    requests: int = 0
    bytes_sent: int = 0
    retries: int = 0
    by_status: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # several senders may count at once

    def count(self, status: int, sent: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes_sent += sent
            self.by_status[status] += 1


def error_body(response: httpx.Response) -> dict[str, Any]:
    """Karla's ``{key, message, type, errors[]}``, tolerating non-JSON bodies."""
    try:
        body = response.json()
    except ValueError:
        return {"key": None, "message": response.text[:500], "errors": []}
    if not isinstance(body, dict):
        return {"key": None, "message": str(body)[:500], "errors": []}
    errors = body.get("errors") or body.get("detail") or []
    return {"key": body.get("key"), "message": body.get("message") or "", "errors": errors if isinstance(errors, list) else []}


class KarlaClient:
    def __init__(
        self,
        settings: KarlaSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_request: Callable[[str, int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.stats = KarlaStats()
        self._on_request = on_request
        self._http = httpx.Client(
            base_url=f"{settings.base_url}/v1",
            auth=httpx.BasicAuth(settings.user, settings.api_key.get_secret_value()),
            timeout=settings.timeout_seconds,
            verify=settings.verify_tls,
            transport=transport,
            headers={"User-Agent": f"karla-connector/{_VERSION}", "Content-Type": "application/json"},
        )
        policy = RetryPolicy(attempts=settings.retry_attempts, max_seconds=settings.retry_max_seconds)
        self._retrying = make_retrying(policy, sleep=sleep, on_retry=self._count_retry)

    def _count_retry(self, _exc: BaseException | None) -> None:
        with self.stats.lock:
            self.stats.retries += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KarlaClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- endpoints -----------------------------------------------------------------------------------
    def upsert_order(self, slug: str, item: OrderFulfillment | dict[str, Any]) -> Any:
        body = dump(item) if isinstance(item, OrderFulfillment) else item
        return self._send("PUT", f"/shops/{slug}/orders", _encode(body), "upsert")

    def bulk_upsert(self, slug: str, items: Sequence[OrderFulfillment | dict[str, Any]]) -> Any:
        body = [dump(i) if isinstance(i, OrderFulfillment) else i for i in items]
        return self._send("PUT", f"/shops/{slug}/orders/bulk", _encode(body), "bulk")

    def bulk_upsert_raw(self, slug: str, body: bytes) -> Any:
        return self._send("PUT", f"/shops/{slug}/orders/bulk", body, "bulk")

    def search_orders(self, slug: str, **params: Any) -> Any:
        return self._send("GET", f"/shops/{slug}/orders", None, "search", params=params)

    def check(self, slug: str) -> None:
        """Prove the credentials work for ``slug`` without writing anything (Search Orders, one result)."""
        self.search_orders(slug, per_page=1)

    # -- plumbing ------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: bytes | None, endpoint: str, params: dict | None = None) -> Any:
        def attempt() -> Any:
            response = self._http.request(method, path, content=body, params=params)
            self.stats.count(response.status_code, len(body or b""))
            if self._on_request:
                self._on_request(endpoint, response.status_code)
            return self._interpret(response, endpoint)

        return call_with_retries(self._retrying, attempt, "Karla API")

    def _interpret(self, response: httpx.Response, endpoint: str) -> Any:
        action = action_for_status(response.status_code)
        if action is Action.OK:
            return response.json() if response.content else None
        info = error_body(response)
        summary = f"{response.status_code} {info['key'] or ''} {info['message']}".strip()
        if action is Action.RETRY:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RetryableError(f"Karla {endpoint}: {summary}", retry_after=retry_after, status=response.status_code)
        if action is Action.SPLIT:
            raise BatchTooLarge(f"Karla {endpoint}: {summary}")
        if action is Action.REJECT and info["key"] not in ("shop_not_found",):
            raise RecordRejected(f"Karla rejected the {endpoint}: {summary}", key=info["key"], details=info | {"status": response.status_code})
        raise ConfigError(self._fatal_message(response.status_code, info))

    def _fatal_message(self, status: int, info: dict[str, Any]) -> str:
        who = f"user {self.settings.user!r} at {self.settings.base_url}"
        hint = {
            400: "the request was refused as unauthenticated or malformed: check [karla].username and [karla].api_key",
            401: "the API key was refused (wrong, deleted or expired): check [karla].api_key / KARLA_CONNECTOR_KARLA__API_KEY",
            403: "the API key lacks rights for this shop: it needs the editor or admin role",
            404: "the shop does not exist: check [karla].shop_slug (and each source's shop_slug)",
        }.get(status, "unexpected answer")
        return f"Karla {status} {info['key'] or ''} for {who}: {hint} ({info['message']})"


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
