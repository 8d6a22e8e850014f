"""The Karla HTTP client: Basic auth, one status table, the shared retry policy, request accounting.

Bodies can be passed pre-serialised (``bulk_upsert_raw``) so delivery serialises each payload exactly once.
Answers are classified by ``connector.errors.action_for`` (status, Karla's ``key``, an item named in
``errors[].loc``). ``abort()`` (or setting the ``abort`` event given at construction) makes every call
of this client stop retrying at once; a single call can also take its own ``abort`` event. A ``Retry-After``
pauses every call of this client, not only the one it answered (``connector.karla.pause``).
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

from urllib.parse import quote

import httpx
import tenacity

from connector.errors import (
    Aborted,
    Action,
    BatchTooLarge,
    RecordRejected,
    RetryableError,
    action_for,
    item_index,
)
from connector.karla.answers import fatal_answer, web_page
from connector.karla.models import OrderFulfillment, dump
from connector.karla.pause import SharedPause
from connector.karla.probe import KeyProbe
from connector.logs import clip, register_basic_auth
from connector.loopback import loopback_direct
from connector.retry import RetryPolicy, call_with_retries, make_retrying, parse_retry_after, tls_verify
from connector import __version__
from connector.settings import KarlaSettings

__all__ = ["NO_ANSWER", "SANDBOX_HEADER", "KarlaClient", "KarlaStats", "error_body"]

log = logging.getLogger(__name__)
# The embedded sandbox (``connector.sandbox``) puts this header on every answer: its acknowledgements are not the
# real Karla's, whatever address it was reached at (``state.karla_target``).
SANDBOX_HEADER = "Karla-Sandbox"
# The status ``on_request`` gets for a request that got no answer (refused, timed out, reset): metrics' ``error``.
NO_ANSWER = 0


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
    """Karla's ``{key, message, type, errors[]}``, tolerating non-JSON bodies; the message masked before it is cut."""
    try:
        body = response.json()
    except ValueError:  # a proxy's or server's own page (HTML, text): one line of it is enough
        return {"key": None, "message": clip(" ".join(response.text.split()), 200), "errors": []}
    if not isinstance(body, dict):
        return {"key": None, "message": clip(str(body), 500), "errors": []}
    errors = body.get("errors") or body.get("detail") or []
    message = body.get("message") or (errors if isinstance(errors, str) else "")  # FastAPI: {"detail": "Not Found"}
    return {"key": body.get("key"), "message": clip(str(message), 500), "errors": errors if isinstance(errors, list) else []}


class KarlaClient:
    def __init__(
        self,
        settings: KarlaSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_request: Callable[[str, int], None] | None = None,
        abort: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._abort = abort if abort is not None else threading.Event()
        self.stats = KarlaStats()
        self._on_request = on_request
        register_basic_auth(settings.user, settings.api_key.get_secret_value())  # what a server echoing the header shows
        self._http = httpx.Client(
            base_url=f"{settings.base_url}/v1",
            auth=httpx.BasicAuth(settings.user, settings.api_key.get_secret_value()),
            timeout=settings.timeout_seconds,
            verify=tls_verify(settings.verify_tls, settings.ca_file),
            transport=transport,
            headers=_headers(settings),
            mounts=loopback_direct(settings.base_url),  # a loopback Karla never through http_proxy: the key in clear
        )
        if self.tls_warning:
            log.warning("%s", self.tls_warning)
        policy = RetryPolicy(attempts=settings.retry_attempts, max_seconds=settings.retry_max_seconds)
        self._retrying = make_retrying(policy, sleep=sleep, on_retry=self._count_retry)
        self._pause = SharedPause(sleep, clock)  # a Retry-After pauses every sender of this client (max_in_flight)
        self._probe = KeyProbe(self._http, settings.shop_slug, clock, lambda status: self._heard("search", status, 0))
        self._answer = threading.local()  # per sender thread: whether its last answer bore the sandbox's header

    def _count_retry(self, _exc: BaseException | None) -> None:
        with self.stats.lock:
            self.stats.retries += 1

    def abort(self) -> None:
        """Stop retrying now, in every thread: sleeping retries wake up, nothing new is sent (``Aborted``).

        For a shutdown; it is final for this client. A request already on the wire still gets its answer
        (bounded by ``timeout_seconds``)."""
        self._abort.set()

    @property
    def tls_warning(self) -> str | None:
        """Said once per client, and by `check`: an unverified connection carries the API key to whoever answers."""
        if self.settings.verify_tls:
            return None
        host = httpx.URL(self.settings.base_url).host
        return (f"TLS certificate of {host} NOT verified ([karla].verify_tls = false): anyone between here and "
                f"{host} can read the API key and the orders; to trust a private CA, set [karla].ca_file instead")

    def answered_by_sandbox(self) -> bool:
        """Whether the last answer this thread got came from the embedded sandbox (``SANDBOX_HEADER``)."""
        return bool(getattr(self._answer, "sandbox", False))

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KarlaClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- endpoints -----------------------------------------------------------------------------------
    def upsert_order(self, slug: str, item: OrderFulfillment | dict[str, Any]) -> Any:
        body = dump(item) if isinstance(item, OrderFulfillment) else item
        return self._send("PUT", f"/shops/{_path(slug)}/orders", _encode(body), "upsert")

    def bulk_upsert(self, slug: str, items: Sequence[OrderFulfillment | dict[str, Any]]) -> Any:
        body = [dump(i) if isinstance(i, OrderFulfillment) else i for i in items]
        return self._send("PUT", f"/shops/{_path(slug)}/orders/bulk", _encode(body), "bulk")

    def bulk_upsert_raw(self, slug: str, body: bytes, *, abort: threading.Event | None = None, once: bool = False) -> Any:
        """``abort``: this call's own stop event (delivery sets it when the first batch gives up). ``once``: one
        attempt, no retries (an order already being retried on its own schedule, see ``connector.suspects``)."""
        return self._send("PUT", f"/shops/{_path(slug)}/orders/bulk", body, "bulk", abort=abort, once=once)

    def search_orders(self, slug: str, **params: Any) -> Any:
        return self._send("GET", f"/shops/{_path(slug)}/orders", None, "search", params=params)

    def check(self, slug: str) -> None:
        """Prove the credentials work for ``slug`` without writing anything (Search Orders, one result)."""
        self.search_orders(slug, per_page=1)

    # -- plumbing ------------------------------------------------------------------------------------
    def _send(
        self, method: str, path: str, body: bytes | None, endpoint: str, params: dict | None = None,
        abort: threading.Event | None = None, once: bool = False,
    ) -> Any:
        slept = 0.0  # the end of the pause this call's own Retry-After started (its backoff sleeps it out)
        probe = False  # Karla failed this call without a Retry-After (5xx, timeout): its retry asks whether Karla is up

        def attempt() -> Any:
            nonlocal slept, probe
            if not probe:  # a probe keeps its own short backoff: an outage still ends the drain at once
                self._pause.wait(event, slept)
                if event.is_set():
                    raise Aborted("Karla API: not sent, asked to stop")
            probe = True  # stays so if no answer comes (a timeout, a refused connection)
            try:
                response = self._http.request(method, path, content=body, params=params)
            except httpx.TransportError:  # no answer: counted for the metrics, not in ``stats`` (answers only)
                if self._on_request:
                    self._on_request(endpoint, NO_ANSWER)
                raise
            self._heard(endpoint, response.status_code, len(body or b""))
            try:
                return self._interpret(response, endpoint)
            except RetryableError as exc:  # a pause beyond the budget ends the retries (connector.retry) instead
                probe = exc.retry_after is None
                if exc.retry_after is not None and exc.retry_after <= self.settings.retry_max_seconds:
                    slept = self._pause.start(exc.retry_after)
                raise

        event = self._abort if abort is None or self._abort.is_set() else abort
        retrying = self._retrying.copy(stop=tenacity.stop_after_attempt(1)) if once else self._retrying
        return call_with_retries(retrying, attempt, "Karla API", abort=event, ca_option="[karla].ca_file")

    def _heard(self, endpoint: str, status: int, sent: int) -> None:
        self.stats.count(status, sent)
        if self._on_request:
            self._on_request(endpoint, status)

    def _interpret(self, response: httpx.Response, endpoint: str) -> Any:
        status = response.status_code
        self._answer.sandbox = SANDBOX_HEADER in response.headers
        if action_for(status) is Action.OK:
            if "html" in response.headers.get("content-type", "").lower():
                raise web_page(response, self.settings)
            return _json_or_none(response)  # otherwise a 2xx is an acknowledgement whatever its body
        info = error_body(response)
        action = action_for(status, info["key"], names_item=any(item_index(e) is not None for e in info["errors"]))
        summary = " ".join(str(v) for v in (status, info["key"], info["message"]) if v)
        if action is Action.RETRY:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RetryableError(f"Karla {endpoint}: {summary}", retry_after=retry_after, status=status)
        if action is Action.SPLIT:
            raise BatchTooLarge(f"Karla {endpoint}: {summary}")
        if action is Action.REJECT:
            raise RecordRejected(f"Karla rejected the {endpoint}: {summary}", key=info["key"], details=info | {"status": status})
        raise fatal_answer(response, info, self.settings, self._key_works)

    def _key_works(self) -> bool | None:
        """Whether Karla takes the key for [karla].shop_slug (None: unknown, or told to stop sending)."""
        return None if self.aborted else self._probe.key_works()

def _headers(settings: KarlaSettings) -> dict[str, str]:
    """Every request's headers; ``Karla-Version`` only when [karla].api_version pins one (else Karla's latest)."""
    headers = {"User-Agent": f"karla-connector/{__version__}", "Content-Type": "application/json"}
    if settings.api_version:
        headers["Karla-Version"] = settings.api_version
    return headers


def _path(slug: str) -> str:
    """The slug as one path segment: a slash, ``?`` or ``#`` in it sent the request to another route."""
    return quote(slug, safe="")


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        log.debug("Karla answered %s with a non-JSON body; taken as success", response.status_code)
        return None


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
