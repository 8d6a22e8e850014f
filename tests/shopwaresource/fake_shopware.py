"""A fake Shopware 6 Admin API: a real HTTP server on loopback with the traps of the real one.

Implements the token endpoint (expiring tokens on an injected clock, a request counter), ``POST
/api/search/order`` with the Criteria features the adapter uses (``multi`` OR/AND, ``range`` on dates and
nested ``deliveries.updatedAt``, ``equals``/``equalsAny``, sort, limit, page, includes, total-count-mode),
``GET /api/_info/version``, a 500-row limit (``FRAMEWORK__QUERY_LIMIT_EXCEEDED``), scripted failures and
hooks to write between page requests. Traps: without ``Accept: application/json`` the answer is JSON:API;
without a JSON content type the criteria are ignored (first 500 rows); new rows have ``updatedAt: null``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeShopware", "shopware_time"]


def shopware_time(moment: datetime) -> str:
    """RFC 3339 with milliseconds, as Shopware serialises datetimes."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def _as_storage(value: str | None) -> str | None:
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _values(entity: Any, path: list[str]) -> list[Any]:
    if not path:
        return [entity]
    if isinstance(entity, list):
        return [v for item in entity for v in _values(item, path)]
    if not isinstance(entity, dict):
        return []
    return _values(entity.get(path[0]), path[1:])


def _match(entity: dict[str, Any], f: dict[str, Any]) -> bool:
    kind = f["type"]
    if kind == "multi":
        results = [_match(entity, q) for q in f["queries"]]
        return any(results) if f.get("operator", "AND").upper() == "OR" else all(results)
    values = _values(entity, f["field"].split("."))
    if kind == "equals":
        return f["value"] in values
    if kind == "equalsAny":
        return any(v in f["value"] for v in values)
    if kind == "range":
        for value in values:
            if value is None:
                continue
            comparable = _as_storage(value) if isinstance(value, str) else value
            ok = all({"gt": comparable > p, "gte": comparable >= p, "lt": comparable < p, "lte": comparable <= p}[op]
                     for op, p in f["parameters"].items())
            if ok:
                return True
        return False
    raise ValueError(f"filter type {kind} not supported by the fake")


def _include(value: Any, includes: dict[str, list[str]]) -> Any:
    if isinstance(value, list):
        return [_include(v, includes) for v in value]
    if not isinstance(value, dict):
        return value
    alias = value.get("apiAlias")
    keep = includes.get(alias) if alias else None
    return {k: _include(v, includes) for k, v in value.items() if keep is None or k in keep or k == "apiAlias"}


class FakeShopware:
    def __init__(self, *, now: Callable[[], datetime], client: tuple[str, str] = ("SWIAFAKE", "sw-s3cr3t-value"), token_ttl: int = 600,
                 max_limit: int = 500, version: str = "6.6.7.1") -> None:
        self.now, self.client, self.token_ttl, self.max_limit, self.version = now, client, token_ttl, max_limit, version
        self.orders: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, datetime] = {}
        self.token_requests = 0
        self.searches: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.before_search: Callable[[FakeShopware, int], None] | None = None
        self._next_ai = 1
        self.lock = threading.RLock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeShopware:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- writes, as the shop's admin or an ERP would make them ------------------------------------------
    def insert(self, order: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            order.setdefault("id", uuid.uuid4().hex)
            order["autoIncrement"] = self._next_ai
            self._next_ai += 1
            order["createdAt"], order["updatedAt"] = shopware_time(at or self.now()), None  # the NULL updatedAt trap
            for delivery in order.get("deliveries") or []:
                delivery["createdAt"], delivery["updatedAt"] = order["createdAt"], None
            self.orders[order["id"]] = order
            return order

    def update(self, order_id: str, at: datetime | None = None, **fields: Any) -> None:
        with self.lock:
            order = self.orders[order_id]
            order.update(fields)
            order["updatedAt"] = shopware_time(at or self.now())

    def add_tracking_code(self, order_id: str, code: str, state: str = "shipped", at: datetime | None = None) -> None:
        """An ERP PATCHes the delivery: only the delivery's updatedAt moves, not the order's."""
        with self.lock:
            delivery = self.orders[order_id]["deliveries"][0]
            delivery["trackingCodes"] = [*delivery.get("trackingCodes", []), code]
            delivery["stateMachineState"] = {"technicalName": state, "apiAlias": "state_machine_state"}
            delivery["updatedAt"] = shopware_time(at or self.now())

    # -- reads ---------------------------------------------------------------------------------------
    def search(self, criteria: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        limit = int(criteria.get("limit") or self.max_limit)
        if limit > self.max_limit:
            return 400, {"errors": [{"status": "400", "code": "FRAMEWORK__QUERY_LIMIT_EXCEEDED", "title": "Bad Request",
                                     "detail": f"The limit must be lower than or equal to MAX_LIMIT (given: {limit}, max: {self.max_limit})",
                                     "source": {"pointer": "/limit"}}]}
        if self.before_search:
            self.before_search(self, len(self.searches))
        self.searches.append(criteria)
        with self.lock:
            rows = [o for o in self.orders.values() if all(_match(o, f) for f in criteria.get("filter", []))]
            for sort in reversed(criteria.get("sort", [])):
                rows.sort(key=lambda o: (o.get(sort["field"]) is None, o.get(sort["field"])), reverse=sort.get("order") == "DESC")
            offset = limit * (int(criteria.get("page") or 1) - 1)
            page = json.loads(json.dumps(rows[offset : offset + limit]))
        includes = criteria.get("includes") or {}
        return 200, {"total": len(page), "data": [_include(o, includes) for o in page], "aggregations": []}

    def issue_token(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.token_requests += 1
        if (body.get("client_id"), body.get("client_secret")) != self.client:
            return 401, {"errors": [{"code": "4", "status": "401", "title": "Client authentication failed", "detail": None}]}
        token = uuid.uuid4().hex
        self.tokens[token] = self.now() + timedelta(seconds=self.token_ttl)
        return 200, {"token_type": "Bearer", "expires_in": self.token_ttl, "access_token": token}

    def token_ok(self, header: str | None) -> bool:
        token = (header or "").removeprefix("Bearer ")
        return token in self.tokens and self.now() < self.tokens[token]


def _handler(fake: FakeShopware) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *_: Any) -> None:
            return

        def _send(self, status: int, body: dict[str, Any], content_type: str = "application/json") -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:  # noqa: N802
            if not fake.token_ok(self.headers.get("Authorization")):
                return self._send(401, {"errors": [{"code": "9", "status": "401", "title": "The resource owner or authorization server denied the request."}]})
            if self.path == "/api/_info/version":
                return self._send(200, {"version": fake.version})
            self._send(404, {"errors": [{"status": "404", "title": "Not Found"}]})

        def do_POST(self) -> None:  # noqa: N802
            raw = self._body()
            if self.path == "/api/oauth/token":
                return self._send(*fake.issue_token(json.loads(raw or b"{}")))
            if fake.script:
                status = fake.script.pop(0)
                return self._send(status, {"errors": [{"status": str(status), "title": "scripted"}]})
            if not fake.token_ok(self.headers.get("Authorization")):
                return self._send(401, {"errors": [{"code": "9", "status": "401", "title": "The resource owner or authorization server denied the request.",
                                                    "detail": "Access token could not be verified"}]})
            if self.path != "/api/search/order":
                return self._send(404, {"errors": [{"status": "404", "title": "Not Found"}]})
            json_body = (self.headers.get("Content-Type") or "").startswith("application/json")
            status, body = fake.search(json.loads(raw) if json_body and raw else {"limit": 500})
            if self.headers.get("Accept") != "application/json" and status == 200:  # the JSON:API trap
                body = {"data": [{"id": o["id"], "type": "order", "attributes": o} for o in body["data"]], "meta": {"total": body["total"]}}
                return self._send(status, body, "application/vnd.api+json")
            self._send(status, body)

    return Handler
