"""An HTTP server that behaves like Karla's order endpoints as documented, for tests, the demo, and
merchants trying the connector before they have credentials. Standard library only, HTTP/1.1 keep-alive,
so it is never the bottleneck of a benchmark."""

from __future__ import annotations

import base64
import binascii
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connector.sandbox.store import OrderStore
from connector.sandbox.validate import validate_item

__all__ = ["Faults", "RequestLog", "Sandbox", "serve"]


@dataclass(slots=True)
class Faults:
    """Random faults for order writes, reproducible with ``seed``."""

    error_rate: float = 0.0
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
    retry_after: str | None = None


@dataclass(slots=True)
class _Scripted:
    """An answer chosen by a test; ``body`` None means Karla's error shape with key ``sandbox_fault``."""

    status: int
    retry_after: float | None
    body: Any = None  # dict/list → JSON; str/bytes → sent as is, with ``content_type``
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


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
        self.requests: list[RequestLog] = []
        self._script: list[_Scripted] = []
        self._refused: dict[str, _Scripted] = {}  # order id → the answer to any write that carries it
        self._rng = random.Random(self.faults.seed)
        self._faults_seen: Faults | None = self.faults
        self._changed = threading.Condition()
        self.in_flight = 0
        self.peak_in_flight = 0  # most PUTs handled at the same moment (clients may send several at once)
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
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
            self._script.extend(_Scripted(status, retry_after, body, content_type, dict(headers or {})) for _ in range(count))

    def refuse_order(self, order_id: str, status: int, key: str | None, message: str = "refused by the sandbox") -> None:
        """Answer every write that carries order ``order_id`` with ``status`` and ``key``, naming no item
        (``errors`` empty), as a Karla that refuses one record of a bulk without saying which would."""
        body = _error(key, message) if key else {"message": message}
        with self._changed:
            self._refused[str(order_id)] = _Scripted(status, None, body)

    def refusal(self, items: Any) -> _Scripted | None:
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

    def fault(self) -> _Scripted | None:
        with self._changed:
            if self._script:
                return self._script.pop(0)
            f = self.faults
            if f is not self._faults_seen:  # new Faults object: its seed starts a fresh, reproducible sequence
                self._rng, self._faults_seen = random.Random(f.seed), f
            roll = self._rng.random()
            if roll < f.error_rate:
                return _Scripted(self._rng.choice(f.error_statuses), None)
            if roll < f.error_rate + f.rate_limit_rate:
                return _Scripted(429, f.retry_after)
        return None


def _error(key: str, message: str, errors: list[dict[str, Any]] | None = None, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"key": key, "message": message, "type": type_, "errors": errors or []}


def _handler_for(sb: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes; don't wait 40 ms for an ACK

        def log_message(self, fmt: str, *args: Any) -> None:
            if sb.verbose:
                super().log_message(fmt, *args)

        def _reply(
            self, status: int, body: Any, items: int = 0, length: int = 0, retry_after: float | None = None,
            content_type: str = "application/json", headers: dict[str, str] | None = None,
        ) -> None:
            data = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            header = None
            if retry_after is not None:
                header = f"{retry_after:g}"
                self.send_header("Retry-After", header)
            # logged before the answer leaves: whoever got the answer can already see it in ``requests``
            sb.record(RequestLog(self.command, urlsplit(self.path).path, status, length, items, time.monotonic(), header))
            self.end_headers()
            self.wfile.write(data)

        def _auth(self) -> bool:
            value = self.headers.get("Authorization", "")
            if not value.startswith("Basic "):
                return self._deny(400, "Missing or malformed authentication credentials")
            try:
                user, _, key = base64.b64decode(value[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return self._deny(400, "Missing or malformed authentication credentials")
            if sb.credentials.get(user) != key or not key:
                return self._deny(401, "Invalid username or API key")
            return True

        def _deny(self, status: int, message: str) -> bool:
            self._drain()
            self._reply(status, _error("invalid_merchant_or_key", message))
            return False

        def _drain(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _route(self) -> tuple[str | None, str]:
            parts = urlsplit(self.path).path.strip("/").split("/")
            if len(parts) >= 4 and parts[:2] == ["v1", "shops"] and parts[3] == "orders":
                if len(parts) == 4:
                    return parts[2], "orders"
                if len(parts) == 5 and parts[4] == "bulk":
                    return parts[2], "bulk"
            return None, ""

        def do_GET(self) -> None:  # noqa: N802
            slug, route = self._route()
            if route != "orders":
                return self._not_found()
            if not self._auth():
                return
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            page, per_page = int(query.pop("page", 1)), int(query.pop("per_page", 30))
            if page < 1 or not 0 < per_page <= 100:
                return self._reply(422, _error("invalid_payload", "page >= 1 and 0 < per_page <= 100"))
            filters = {k: v for k, v in query.items() if k in ("order_number", "external_id", "order_name", "uuid", "email_id", "zip_code")}
            self._reply(200, sb.store.search(slug or "", filters, page, per_page))

        def do_PUT(self) -> None:  # noqa: N802
            with sb._handling():
                self._put()

        def _put(self) -> None:
            slug, route = self._route()
            if not route:
                self._drain()
                return self._not_found()
            if not self._auth():
                return
            length = int(self.headers.get("Content-Length") or 0)
            if route == "bulk" and length > sb.bulk_max_bytes:
                self._drain()
                return self._reply(413, _error("payload_too_large", f"body is {length} bytes, limit {sb.bulk_max_bytes}"), length=length)
            raw = self.rfile.read(length) if length else b""
            fault = sb.fault()
            if sb.faults.delay:
                time.sleep(sb.faults.delay)  # a slow server is part of the simulation, not synchronisation
            if fault is not None:
                return self._scripted(fault, length)
            try:
                body = json.loads(raw)
            except ValueError:
                return self._reply(422, _error("invalid_payload", "body is not valid JSON"), length=length)
            refusal = sb.refusal(body)
            if refusal is not None:
                return self._scripted(refusal, length, len(body) if isinstance(body, list) else 1)
            handler = self._bulk if route == "bulk" else self._upsert
            handler(slug or "", body, length)

        def _scripted(self, answer: _Scripted, length: int, items: int = 0) -> None:
            body = answer.body if answer.body is not None else _error("sandbox_fault", "injected fault", type_="api_error")
            self._reply(answer.status, body, items, length, answer.retry_after, answer.content_type, answer.headers)

        def _upsert(self, slug: str, item: Any, length: int) -> None:
            errors = validate_item(item, ["body"])
            if errors:
                key = errors[0]["type"] if len(errors) == 1 and errors[0]["type"].endswith("_invalid") else "invalid_payload"
                return self._reply(422, _error(key, "Request validation error", errors), 1, length)
            with sb.store.lock:
                if item.get("order") is None and not sb.store.exists_after(slug, item, set()):
                    return self._reply(404, _error("order_not_found", f"Order {item['id']} not found"), 1, length)
                stored = sb.store.upsert(slug, item)
            self._reply(200, stored, 1, length)

        def _bulk(self, slug: str, items: Any, length: int) -> None:
            if not isinstance(items, list):
                return self._reply(422, _error("invalid_payload", "body must be a JSON array", [{"loc": ["body"], "msg": "Input should be a valid list", "type": "list_type"}]), 0, length)
            if len(items) > sb.bulk_max_items:
                return self._reply(413, _error("payload_too_large", f"{len(items)} items, limit {sb.bulk_max_items}"), len(items), length)
            errors = [e for index, item in enumerate(items) for e in validate_item(item, ["body", index])]
            with sb.store.lock:
                created: set[tuple[str, str]] = set()
                for index, item in enumerate(items):
                    if not isinstance(item, dict):
                        continue
                    if item.get("order") is not None:
                        created.add(("order_number", str(item["order"].get("order_number"))))
                        created.add((item.get("id_type", "order_number"), str(item.get("id"))))
                    elif not sb.store.exists_after(slug, item, created):
                        errors.append({"loc": ["body", index, "id"], "msg": f"Order {item.get('id')} not found", "type": "order_not_found"})
                if errors:
                    return self._reply(422, _error("invalid_payload", "Request validation error", errors), len(items), length)
                for item in items:
                    sb.store.upsert(slug, item)
            self._reply(200, {"data": {"processed": len(items)}}, len(items), length)

        def _not_found(self) -> None:
            self._reply(404, _error("not_found", f"No route for {self.command} {urlsplit(self.path).path}"))

        def do_POST(self) -> None:  # noqa: N802
            self._drain()
            self._reply(405, _error("method_not_allowed", "Use PUT for order upserts"))

    return Handler


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
