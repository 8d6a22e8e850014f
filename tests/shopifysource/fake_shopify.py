"""A fake Shopify Admin API: a real HTTP server on loopback executing GraphQL against Shopify's published
2025-01 schema (graphql-core), with state the tests can change between requests.

What it models: cursor pagination over ``orders`` sorted by ``updatedAt`` (cursors encode the last
(updatedAt, id), so an order updated while paging moves behind the window like on Shopify), the search
syntax the adapter uses, cost accounting with a leaky bucket on an injected clock (``THROTTLED`` when over
budget), scripted HTTP failures, access tokens that expire, the client-credentials grant, and bulk
operations whose JSONL result carries child lines with ``__parentId``.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
from collections.abc import Callable
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from graphql import GraphQLSchema, OperationDefinitionNode, build_client_schema, graphql_sync, parse, validate
from graphql.language import FieldNode

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "shared" / "shopify" / "admin_schema_2025-01.json.gz"


@lru_cache(maxsize=1)
def schema() -> GraphQLSchema:
    built = build_client_schema(json.load(gzip.open(SCHEMA_FILE))["data"])
    built._validation_errors = []  # Shopify's schema trips two deprecation rules of graphql-js; queries are still validated
    return built


class FakeClock:
    """Shared by the fake's bucket and the adapter's sleep/monotonic: sleeping advances time, instantly."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)


def query_cost(document: str, variables: dict[str, Any] | None = None) -> int:
    """Shopify's published rule of thumb: objects 1, connections 2 + first × node cost, scalars 0."""
    variables = variables or {}

    def limit(node: FieldNode) -> int | None:
        for arg in node.arguments:
            if arg.name.value in ("first", "last"):
                value = arg.value
                return int(variables[value.name.value]) if hasattr(value, "name") and not hasattr(value, "value") else int(value.value)  # type: ignore[attr-defined]
        return None

    def cost(selections: Any) -> int:
        total = 0
        for node in selections or []:
            if not isinstance(node, FieldNode):
                total += cost(getattr(getattr(node, "selection_set", None), "selections", None))
                continue
            if node.selection_set is None:
                continue
            first = limit(node)
            inner = cost(node.selection_set.selections)
            total += 2 + first * max(1, inner) if first is not None else 1 + inner
        return total

    ops = [d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)]
    return sum(cost(op.selection_set.selections) for op in ops)


def actual_cost(data: Any) -> int:
    """What the answer really contained: one point per object returned (connections included)."""
    if isinstance(data, dict):
        return 1 + sum(actual_cost(v) for v in data.values())
    if isinstance(data, list):
        return sum(actual_cost(v) for v in data)
    return 0


_TERM = re.compile(r"(\w+):(>=|<=|>|<)?'?([^' ]+)'?")


def matches(order: dict[str, Any], search: str) -> bool:
    fields = {"updated_at": "updatedAt", "created_at": "createdAt"}
    for name, op, value in _TERM.findall(search or ""):
        actual = order.get(fields.get(name, name), "")
        op = op or "="
        ok = {">=": actual >= value, "<=": actual <= value, ">": actual >= value, "<": actual <= value, "=": actual == value}[op]
        if not ok:  # note: Shopify treats > and < like >= and <= (shopify-api.md §2.1)
            return False
    return True


def _slice(connection: dict[str, Any], first: int | None, after: str | None) -> dict[str, Any]:
    """Nested connections page too: ``after`` is the index of the next item."""
    items = connection.get("nodes") or []
    start = int(after) if after else 0
    end = start + (first or 50)
    page = items[start:end]
    return {"nodes": page, "edges": [{"node": n} for n in page],
            "pageInfo": {"hasNextPage": end < len(items), "endCursor": str(end) if page else None}}


class FakeShopify:
    def __init__(self, clock: FakeClock, *, bucket: float = 1000.0, restore_rate: float = 100.0, version: str = "2025-01",
                 tokens: tuple[str, ...] = ("shpat_test_token",), client: tuple[str, str] | None = None, token_ttl: float = 3600.0) -> None:
        self.clock, self.version = clock, version
        self.orders: dict[str, dict[str, Any]] = {}
        self.bucket_max, self.restore_rate = bucket, restore_rate
        self.available, self.bucket_at = bucket, clock.now
        self.tokens: dict[str, float | None] = {t: None for t in tokens}
        self.client, self.token_ttl = client, token_ttl
        self.scopes = ["read_orders", "read_all_orders", "read_fulfillments"]
        self.script: list[tuple[int, float | None]] = []
        self.bulk_busy = False
        self.bulk_results: dict[str, str] = {}
        self.log: list[dict[str, Any]] = []
        self.before_page: Callable[[FakeShopify, int], None] | None = None
        self._pages_served = 0
        self.lock = threading.RLock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self._install_resolvers()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeShopify:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def throttled(self) -> int:
        return sum(1 for entry in self.log if entry.get("throttled"))

    # -- data ----------------------------------------------------------------------------------------
    def put(self, order: dict[str, Any]) -> None:
        with self.lock:
            self.orders[order["id"]] = order

    # -- GraphQL -------------------------------------------------------------------------------------
    def _install_resolvers(self) -> None:
        s = schema()
        s.query_type.fields["orders"].resolve = self._resolve_orders  # type: ignore[union-attr]
        s.query_type.fields["shop"].resolve = lambda *_: {"name": "Fake Shop", "myshopifyDomain": "fake.myshopify.com"}  # type: ignore[union-attr]
        s.query_type.fields["currentAppInstallation"].resolve = lambda *_: {"accessScopes": [{"handle": h} for h in self.scopes]}  # type: ignore[union-attr]
        s.query_type.fields["node"].resolve = lambda _r, _i, id: self._bulk_status(id)  # type: ignore[union-attr]
        s.query_type.fields["order"].resolve = lambda _r, _i, id: self.orders.get(id)  # type: ignore[union-attr]
        s.query_type.fields["fulfillment"].resolve = lambda _r, _i, id: next(  # type: ignore[union-attr]
            (f for o in self.orders.values() for f in o.get("fulfillments", []) if f["id"] == id), None)
        s.type_map["Order"].fields["lineItems"].resolve = lambda order, _i, first=None, after=None, **_: _slice(order["lineItems"], first, after)  # type: ignore[union-attr]
        s.type_map["Fulfillment"].fields["fulfillmentLineItems"].resolve = (  # type: ignore[union-attr]
            lambda f, _i, first=None, after=None, **_: _slice(f["fulfillmentLineItems"], first, after))
        s.mutation_type.fields["bulkOperationRunQuery"].resolve = lambda _r, _i, query, **_: self._bulk_run(query)  # type: ignore[union-attr]

    def _resolve_orders(self, _root: Any, _info: Any, first: int | None = None, after: str | None = None, query: str | None = None, **_: Any) -> dict[str, Any]:
        if self.before_page:
            self.before_page(self, self._pages_served)
        self._pages_served += 1
        with self.lock:
            ordered = sorted((o for o in self.orders.values() if matches(o, query or "")), key=lambda o: (o["updatedAt"], o["id"]))
        if after:
            mark = tuple(json.loads(base64.b64decode(after)))
            ordered = [o for o in ordered if (o["updatedAt"], o["id"]) > mark]
        page = ordered[: min(first or 50, 250)]
        end = base64.b64encode(json.dumps([page[-1]["updatedAt"], page[-1]["id"]]).encode()).decode() if page else None
        return {"nodes": page, "pageInfo": {"hasNextPage": len(ordered) > len(page), "endCursor": end}}

    def _bulk_run(self, inner: str) -> dict[str, Any]:
        if self.bulk_busy:
            return {"bulkOperation": None, "userErrors": [{"field": None, "message": "A bulk query operation for this app and shop is already in progress: gid://shopify/BulkOperation/1"}]}
        errors = validate(schema(), parse(inner))
        if errors:
            return {"bulkOperation": None, "userErrors": [{"field": ["query"], "message": str(errors[0])}]}
        search = re.search(r'query:\s*"([^"]*)"', inner)
        op_id = f"gid://shopify/BulkOperation/{len(self.bulk_results) + 10}"
        self.bulk_results[op_id] = self._jsonl(search.group(1) if search else "")
        return {"bulkOperation": {"id": op_id, "status": "CREATED"}, "userErrors": []}

    def _jsonl(self, search: str) -> str:
        lines = []
        with self.lock:
            for order in sorted(self.orders.values(), key=lambda o: (o["updatedAt"], o["id"])):
                if not matches(order, search):
                    continue
                parent = {k: v for k, v in order.items() if k != "lineItems"}
                parent["fulfillments"] = [{k: v for k, v in f.items() if k != "fulfillmentLineItems"} for f in order.get("fulfillments", [])]
                lines.append(parent)
                lines += [{**item, "__parentId": order["id"]} for item in order.get("lineItems", {}).get("nodes", [])]
                for f in order.get("fulfillments", []):
                    lines += [{**item, "__parentId": f["id"]} for item in f.get("fulfillmentLineItems", {}).get("nodes", [])]
        return "\n".join(json.dumps(line) for line in lines) + "\n"

    def _bulk_status(self, op_id: str) -> dict[str, Any] | None:
        if op_id not in self.bulk_results:
            return None
        return {"__typename": "BulkOperation", "id": op_id, "status": "COMPLETED", "errorCode": None, "objectCount": "1",
                "url": f"{self.url}/bulk/{op_id.rsplit('/', 1)[-1]}.jsonl"}

    # -- cost ------------------------------------------------------------------------------------------
    def charge(self, requested: int) -> bool:
        with self.lock:
            now = self.clock.monotonic()
            self.available = min(self.bucket_max, self.available + (now - self.bucket_at) * self.restore_rate)
            self.bucket_at = now
            if requested > self.available:
                return False
            self.available -= requested
            return True

    def cost_extension(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": {
            "maximumAvailable": self.bucket_max, "currentlyAvailable": int(self.available), "restoreRate": self.restore_rate}}}

    def execute(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        document = body.get("query", "")
        try:
            requested = query_cost(document, body.get("variables") or {})
        except Exception as exc:  # noqa: BLE001 - unparsable documents are reported as GraphQL errors
            return 200, {"errors": [{"message": str(exc)}]}
        if requested > self.bucket_max:
            return 200, {"errors": [{"message": f"Query cost is {requested}, which exceeds the single query max cost limit ({int(self.bucket_max)}).",
                                     "extensions": {"code": "MAX_COST_EXCEEDED"}}], "extensions": self.cost_extension(requested, None)}
        if not self.charge(requested):
            self.log.append({"throttled": True, "cost": requested})
            return 200, {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}], "extensions": self.cost_extension(requested, None)}
        result = graphql_sync(schema(), document, variable_values=body.get("variables") or {})
        actual = min(requested, actual_cost(result.data))
        with self.lock:
            self.available = min(self.bucket_max, self.available + requested - actual)  # the refund
        self.log.append({"throttled": False, "cost": actual, "requested": requested, "errors": bool(result.errors)})
        out: dict[str, Any] = {"data": result.data, "extensions": self.cost_extension(requested, actual)}
        if result.errors:
            out["errors"] = [{"message": e.message} for e in result.errors]
        return 200, out

    def token_ok(self, token: str | None) -> bool:
        if token not in self.tokens:
            return False
        expires = self.tokens[token]
        return expires is None or self.clock.monotonic() < expires

    def issue_token(self, client_id: str, secret: str) -> str | None:
        if self.client != (client_id, secret):
            return None
        token = f"shpat_cc_{len(self.tokens)}"
        self.tokens[token] = self.clock.monotonic() + self.token_ttl
        return token


def _handler(fake: FakeShopify) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *_: Any) -> None:
            return

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Shopify-API-Version", fake.version)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            match = re.fullmatch(r"/bulk/(\d+)\.jsonl", self.path)
            op_id = f"gid://shopify/BulkOperation/{match.group(1)}" if match else ""
            if op_id in fake.bulk_results:
                self._send(200, fake.bulk_results[op_id].encode(), content_type="application/jsonl")
            else:
                self._send(404, b'{"errors":"Not Found"}')

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/admin/oauth/access_token":
                form = dict(p.split("=", 1) for p in raw.decode().split("&") if "=" in p)
                token = fake.issue_token(form.get("client_id", ""), form.get("client_secret", ""))
                if token is None:
                    return self._send(400, b'{"error":"invalid_client"}')
                return self._send(200, json.dumps({"access_token": token, "scope": ",".join(fake.scopes), "expires_in": fake.token_ttl}).encode())
            if not self.path.startswith("/admin/api/") or not self.path.endswith("/graphql.json"):
                return self._send(404, b'{"errors":"Not Found"}')
            if fake.script:
                status, retry_after = fake.script.pop(0)
                fake.log.append({"status": status})
                return self._send(status, b'{"errors":"Exceeded rate limit"}', {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None)
            if not fake.token_ok(self.headers.get("X-Shopify-Access-Token")):
                fake.log.append({"status": 401})
                return self._send(401, b'{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}')
            status, body = fake.execute(json.loads(raw))
            self._send(status, json.dumps(body).encode())

    return Handler
