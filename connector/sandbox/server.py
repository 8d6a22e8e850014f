"""An HTTP server that behaves like Karla's order endpoints as documented, for tests, the demo, and
merchants trying the connector before they have credentials. Standard library only, HTTP/1.1 keep-alive,
so it is never the bottleneck of a benchmark."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from typing import Any

from connector.sandbox.faults import Faults, RequestLog, Scripted, error
from connector.sandbox.handler import handler_for
from connector.sandbox.store import OrderStore

__all__ = ["Faults", "RequestLog", "Sandbox", "serve"]


class Sandbox:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: dict[str, str] | None = None,
        bulk_max_items: int = 50,
        bulk_max_bytes: int = 1_000_000,
        faults: Faults | None = None,
        verbose: bool = False,
    ) -> None:
        self.credentials = dict(credentials or {"my-shop": "sandbox-key"})
        self.bulk_max_items, self.bulk_max_bytes = bulk_max_items, bulk_max_bytes
        self.faults = faults or Faults()
        self.verbose = verbose
        self.store = OrderStore()
        self.shops: set[str] | None = None  # the shops that exist (None: any slug); others answer shop_not_found
        self.key_shops: dict[str, frozenset[str] | None] | None = None  # see ``scope_keys`` (None: any key, any shop)
        self.requests: list[RequestLog] = []
        self._script: list[Scripted] = []
        self._refused: dict[str, Scripted] = {}  # order id → the answer to any write that carries it
        self._rng = random.Random(self.faults.seed)
        self._faults_seen: Faults | None = self.faults
        self._changed = threading.Condition()
        self.in_flight = 0
        self.peak_in_flight = 0  # most PUTs handled at the same moment (clients may send several at once)
        self.httpd = ThreadingHTTPServer((host, port), handler_for(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Sandbox:
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="karla-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- test controls --------------------------------------------------------------------------------
    def orders(self, slug: str) -> dict[str, dict[str, Any]]:
        return self.store.orders(slug)

    def reset_log(self) -> None:
        with self._changed:
            self.requests = []
            self.peak_in_flight = 0

    @contextmanager
    def _handling(self) -> Iterator[None]:
        with self._changed:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._changed:
                self.in_flight -= 1

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        *,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` order writes with ``status`` (and ``body``, e.g. a proxy's HTML page
        or a ``text/plain`` "OK"), without storing anything."""
        with self._changed:
            self._script.extend(Scripted(status, retry_after, body, content_type, dict(headers or {})) for _ in range(count))

    def heal(self) -> None:
        """Forget scripted answers not used yet (``fail_next``) and refused orders (``refuse_order``): Karla is back."""
        with self._changed:
            self._script.clear()
            self._refused.clear()

    def scope_keys(self, organisation: Collection[str] = ()) -> None:
        """Tie each key to the shop its user names, as Karla's shop keys are: another shop answers 401
        ``invalid_merchant_or_key``. The users in ``organisation`` hold organisation keys, valid for every shop.
        Off by default, so the demo and tests may send any shop's orders with one key."""
        with self._changed:
            self.key_shops = {user: None if user in organisation else frozenset({user}) for user in self.credentials}

    def key_fits(self, user: str, slug: str | None) -> bool:
        """Whether ``user``'s key (checked already) may use shop ``slug``."""
        if self.key_shops is None or slug is None:
            return True
        shops = self.key_shops.get(user, frozenset({user}))
        return shops is None or slug in shops

    def refuse_order(self, order_id: str, status: int, key: str | None, message: str = "refused by the sandbox") -> None:
        """Answer every write that carries order ``order_id`` with ``status`` and ``key``, naming no item
        (``errors`` empty), as a Karla that refuses one record of a bulk without saying which would."""
        body = error(key, message) if key else {"message": message}
        with self._changed:
            self._refused[str(order_id)] = Scripted(status, None, body)

    def refusal(self, items: Any) -> Scripted | None:
        with self._changed:
            if not self._refused:
                return None
            for item in items if isinstance(items, list) else [items]:
                if isinstance(item, dict) and str(item.get("id")) in self._refused:
                    return self._refused[str(item.get("id"))]
        return None

    def wait_for(self, predicate: Callable[[Sandbox], bool], timeout: float = 30.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked after every request) or the timeout passes."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout=timeout)

    # -- used by the handler ---------------------------------------------------------------------------
    def record(self, entry: RequestLog) -> None:
        with self._changed:
            self.requests.append(entry)
            self._changed.notify_all()

    def fault(self) -> Scripted | None:
        with self._changed:
            if self._script:
                return self._script.pop(0)
            f = self.faults
            if f.down:
                return Scripted(503, None)
            if f is not self._faults_seen:  # new Faults object: its seed starts a fresh, reproducible sequence
                self._rng, self._faults_seen = random.Random(f.seed), f
            roll = self._rng.random()
            if roll < f.error_rate:
                return Scripted(self._rng.choice(f.error_statuses), None)
            if roll < f.error_rate + f.rate_limit_rate:
                return Scripted(429, f.retry_after)
        return None


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    credentials: dict[str, str] | None = None,
    bulk_max_items: int = 50,
    bulk_max_bytes: int = 1_000_000,
    faults: Faults | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run in the foreground (``karla-connector sandbox``) until Ctrl-C."""
    sb = Sandbox(host, port, credentials, bulk_max_items, bulk_max_bytes, faults, verbose=True)
    if ready:
        ready(sb.url)
    try:
        sb.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sb.httpd.server_close()
