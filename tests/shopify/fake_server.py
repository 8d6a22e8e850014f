"""A fake Shopify Admin API: a real HTTP server on 127.0.0.1 executing GraphQL against Shopify's
published 2025-01 schema (graphql-core), so a query real Shopify would refuse fails here too.

It models what the adapter depends on: ``orders`` with ``sortKey: UPDATED_AT``, the search syntax and
keyset cursors (an order updated while paging moves, like on Shopify), cost accounting with a leaky
bucket on an injected clock (``extensions.cost`` on every answer, ``THROTTLED`` when over budget,
``MAX_COST_EXCEEDED`` above the per-query ceiling), scripted HTTP failures (``outage`` for several in a row,
``bulk.failing_downloads`` for result files), fulfillment orders' delivery methods (pickup, POS), the
``X-Shopify-Access-Token`` header with expiring tokens, the client-credentials grant, bulk operations
with a JSONL download (grouped or not, as ``groupObjects`` and the requested version say), and the
``X-Shopify-API-Version`` header. Documents are checked and executed against the *served* version
(``served_version``, else the requested one), as Shopify does when an unsupported version falls forward
(see ``schema.py`` for how far later versions are modelled).

    with FakeShopify(clock) as shop:
        shop.add_order(make_order(1))
        adapter = ShopifyAdapter(..., ShopifyConfig(api_base_url=shop.url, access_token=shop.token, ...), ...)
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from graphql import execute

from tests.shopify.bulk_ops import FakeBulk
from tests.shopify.resolvers import Resolvers
from tests.shopify.schema import actual_cost, load_schema, requested_cost, validate_document
from tests.shopify.store import FakeClock, FakeStore

__all__ = ["Bucket", "FakeShopify", "Scripted"]

_GRAPHQL = re.compile(r"^/admin/api/([^/]+)/graphql\.json$")
_INVALID_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


@dataclass
class Scripted:
    """One canned answer to the next GraphQL request (429, 5xx, 402, ...)."""

    status: int
    body: Any = field(default_factory=lambda: {"errors": "scripted failure"})
    headers: dict[str, str] = field(default_factory=dict)


class Bucket:
    """Shopify's leaky bucket: charged the requested cost up front, refunded to the actual cost."""

    def __init__(self, clock: FakeClock, maximum: float, restore_rate: float) -> None:
        self.clock, self.maximum, self.rate = clock, maximum, restore_rate
        self.available, self.at = maximum, clock.monotonic()

    def refill(self) -> None:
        now = self.clock.monotonic()
        self.available = min(self.maximum, self.available + (now - self.at) * self.rate)
        self.at = now

    def status(self) -> dict[str, float]:
        return {"maximumAvailable": self.maximum, "currentlyAvailable": round(self.available, 3), "restoreRate": self.rate}


class FakeShopify:
    def __init__(self, clock: FakeClock | None = None, *, maximum: float = 1000.0, restore_rate: float = 100.0) -> None:
        self.clock = clock or FakeClock()
        self.lock = threading.RLock()
        self.store = FakeStore(self.clock, self.lock)
        self.resolvers, self.bulk = Resolvers(self), FakeBulk(self)
        self.bucket = Bucket(self.clock, maximum, restore_rate)
        self.token = "shpat_fake_0123456789abcdef"
        self.tokens: dict[str, float | None] = {self.token: None}  # token -> expiry (monotonic) or never
        self.clients: dict[str, str] = {}
        self.token_lifetime = 86399.0
        self.scopes = ["read_orders", "read_all_orders", "read_fulfillments", "read_merchant_managed_fulfillment_orders"]
        self.shop_name, self.domain, self.plan = "Karla Testladen", "karla-test.myshopify.com", "Basic"
        self.served_version: str | None = None  # None: serve the requested version; else fall forward to this one
        self.redact_customer_data = False
        self.max_query_cost = 1000
        self.script: list[Scripted] = []
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        self.requests: list[dict[str, Any]] = []
        self.searches: list[str] = []
        self.throttled = self.unauthorized = self.token_grants = 0
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeShopify:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeShopify:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- test API ----------------------------------------------------------------------------------
    def add_order(self, order: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.store.add(order, **kwargs)

    def outage(self, requests: int, status: int = 503) -> None:
        """The next ``requests`` GraphQL requests fail with ``status``: a sustained Shopify incident."""
        with self.lock:
            self.script.extend(Scripted(status, {"errors": "Service Unavailable"}) for _ in range(requests))

    def add_client(self, client_id: str, secret: str, *, lifetime: float = 86399.0) -> None:
        self.clients[client_id], self.token_lifetime = secret, lifetime

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens = {t: self.clock.monotonic() - 1 for t in self.tokens}

    def graphql_requests(self, operation: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("operation") and (operation is None or r["operation"] == operation)]

    # -- HTTP --------------------------------------------------------------------------------------
    def handle_token(self, raw: bytes, content_type: str) -> tuple[int, dict[str, str], Any]:
        form = json.loads(raw) if "json" in content_type else {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        with self.lock:
            self.token_grants += 1
            client_id = form.get("client_id")
            if form.get("grant_type") != "client_credentials" or self.clients.get(client_id or "") != form.get("client_secret"):
                return 400, {}, {"error": "invalid_client", "error_description": "Client authentication failed"}
            token = f"shpat_cc_{self.token_grants}_{client_id}"
            self.tokens[token] = self.clock.monotonic() + self.token_lifetime
            return 200, {}, {"access_token": token, "scope": ",".join(self.scopes), "expires_in": int(self.token_lifetime)}

    def handle_graphql(self, version: str, headers: Any, raw: bytes) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            answer_headers = {"X-Shopify-API-Version": self.served_version or version}
            record: dict[str, Any] = {"version": version, "operation": None, "status": 200}
            self.requests.append(record)
            if self.script:
                scripted = self.script.pop(0)
                record["status"] = scripted.status
                return scripted.status, {**answer_headers, **scripted.headers}, scripted.body
            if not self._token_valid(headers.get("X-Shopify-Access-Token")):
                self.unauthorized += 1
                record["status"] = 401
                return 401, answer_headers, _INVALID_TOKEN
            payload = json.loads(raw)
            document, variables = payload["query"], payload.get("variables") or {}
            match = re.match(r"\s*(?:query|mutation)\s+(\w+)", document)
            record.update(operation=match.group(1) if match else "anonymous", variables=variables)
            if self.on_request:
                self.on_request(record)
            # Shopify executes the version it answers with: a falling-forward request gets that version's
            # schema and defaults (groupObjects!), whatever the URL asked for.
            return 200, answer_headers, self._execute(document, variables, record, self.served_version or version)

    def _token_valid(self, token: str | None) -> bool:
        if not token or token not in self.tokens:
            return False
        expiry = self.tokens[token]
        return expiry is None or expiry > self.clock.monotonic()

    def _execute(self, document: str, variables: dict[str, Any], record: dict[str, Any], version: str) -> dict[str, Any]:
        ast, problems = validate_document(document, version)
        if ast is None or problems:
            return {"errors": [{"message": m, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}} for m in problems]}
        requested = requested_cost(document, variables)
        record["cost"] = requested
        self.bucket.refill()
        if requested > self.max_query_cost:
            message = f"Query cost is {requested}, which exceeds the single query max cost limit ({self.max_query_cost})."
            return {"errors": [{"message": message, "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested,
                                                                    "maxCost": self.max_query_cost}}],
                    "extensions": {"cost": self._cost(requested, None)}}
        if requested > self.bucket.available:
            self.throttled += 1
            record["throttled"] = True
            return {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED",
                                                                        "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": {"cost": self._cost(requested, None)}}
        self.bucket.available -= requested
        result = execute(load_schema(version), ast, root_value=self.resolvers.root(), variable_values=variables)
        actual = min(requested, actual_cost(result.data))
        record["actual"] = actual
        self.bucket.available = min(self.bucket.maximum, self.bucket.available + requested - actual)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = result.formatted["errors"]  # type: ignore[index]
        body["extensions"] = {"cost": self._cost(requested, actual)}
        return body

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": self.bucket.status()}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave together: no 40 ms delayed-ACK stall per request
    wbufsize = 1 << 16
    fake: FakeShopify

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match = _GRAPHQL.match(self.path)
        if self.path == "/admin/oauth/access_token":
            self._send(*self.fake.handle_token(raw, self.headers.get("Content-Type") or ""))
        elif match:
            self._send(*self.fake.handle_graphql(match.group(1), self.headers, raw))
        else:
            self._send(404, {}, {"errors": "Not Found"})

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/bulk/") and self.fake.bulk.download_failure():
            self._send(503, {}, {"errors": "Service Unavailable"})
            return
        content = self.fake.bulk.file(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/bulk/") else None
        if content is None:
            self._send(404, {}, {"errors": "Not Found"})
            return
        self._send(200, {"Content-Type": "application/jsonl"}, content.encode())

    def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass
