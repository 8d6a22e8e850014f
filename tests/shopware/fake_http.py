"""The fake Shopware's HTTP side: one request handler class per fake, routing to its methods.

Routes: ``POST /api/oauth/token``, ``GET /api/_info/version``, ``POST /api/search/{order,
state-machine-history,state-machine-state,sales-channel}`` and ``POST /api/search-ids/order`` (ids only: Shopware runs the
criteria without loading the entities, so nothing a loaded order trips over can break it).
"""

from __future__ import annotations

import email.utils
import json
import socket
from datetime import timezone
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from tests.shopware.fake_criteria import CriteriaError, json_api

if TYPE_CHECKING:
    from tests.shopware.fake_server import FakeShopware

__all__ = ["errors", "handler"]

SEARCHABLE = ("order", "state-machine-history", "state-machine-state", "sales-channel", "number-range")
READ_PRIVILEGE = {"state-machine-history": "state_machine_history:read", "state-machine-state": "state_machine:read",
                  "number-range": "number_range:read"}


def errors(status: int, code: str, title: str, detail: str | None, parameters: Any = None) -> dict[str, Any]:
    error = {"status": str(status), "code": code, "title": title, "detail": detail}
    if parameters is not None:
        error["meta"] = {"parameters": parameters}
    return {"errors": [error]}


def handler(fake: FakeShopware) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body: no Nagle stall

        def log_message(self, *args: Any) -> None:
            pass

        def date_time_string(self, timestamp: float | None = None) -> str:
            return email.utils.format_datetime(fake.now().astimezone(timezone.utc), usegmt=True)

        def _reply(self, status: int, body: Any, kind: str = "application/json", headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def _moved(self, location: str) -> None:
            raw = b"<html><head><title>301 Moved Permanently</title></head></html>"
            self.send_response(301)
            self.send_header("Location", location)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _page(self, status: int, headers: dict[str, str], html: str) -> None:
            """Something in front of Shopware answering (basic auth, a WAF): its own HTML page."""
            raw = html.encode()
            self.send_response_only(status)  # its own Server header, not Python's
            for name, value in {"Date": self.date_time_string(), "Content-Type": "text/html", **headers,
                                "Content-Length": str(len(raw))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> tuple[bytes, dict[str, Any] | None]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                return raw, json.loads(raw or b"{}")
            except ValueError:
                return raw, None

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            raw, body = self._body()
            path = self.path.split("?")[0]
            with fake.lock:
                fake.requests.append({"method": method, "path": path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body})
            if fake.redirect_to and path.startswith(fake.redirect_from):
                self._moved(fake.redirect_to + self.path)
                return
            if fake.front and path.startswith(fake.front_from):
                self._page(*fake.front)
                return
            action = fake._scripted(path)
            if action == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if action is not None:
                status, wait = action if isinstance(action, tuple) else (action, None)
                self._reply(status, errors(status, str(status), "Scripted failure", None),
                            headers={"Retry-After": str(wait)} if wait is not None else None)
                return
            if path == "/api/oauth/token":
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                status, answer = fake._token(body if isinstance(body, dict) and body else form)
                self._reply(status, answer)
                return
            accept = self.headers.get("Accept") or ""
            if not accept:
                self._reply(415, errors(415, "0", "Unsupported Media Type", "All provided media types are unsupported."))
                return
            if not fake._authorised(self.headers.get("Authorization") or ""):
                self._reply(401, errors(401, "9", "The resource owner or authorization server denied the request.",
                                         "Access token could not be verified"))
                return
            self._route(method, path, body, accept)

        def _route(self, method: str, path: str, body: dict[str, Any] | None, accept: str) -> None:
            if method == "GET" and path in ("/api/_info/version", "/api/v1/_info/version"):
                self._reply(200, {"version": fake.version})
                return
            ids_only = path == "/api/search-ids/order"
            entity = "order" if ids_only else path.removeprefix("/api/search/")
            if method != "POST" or entity not in SEARCHABLE:
                self._reply(404, errors(404, "FRAMEWORK__ROUTE_NOT_FOUND", "Not Found", f"No route found for {path}"))
                return
            refused = {"state-machine-history": not fake.history_readable, "state-machine-state": not fake.states_readable,
                       "number-range": not fake.number_ranges_readable}
            missing = fake.missing_privileges or ([READ_PRIVILEGE[entity]] if refused.get(entity) else [])
            if missing:
                detail = json.dumps({"message": "Missing privilege", "missingPrivileges": missing})
                self._reply(403, errors(403, "FRAMEWORK__MISSING_PRIVILEGE_ERROR", "Forbidden", detail))
                return
            ignore = not (self.headers.get("Content-Type") or "").startswith("application/json")
            try:
                data, total, _ = fake._search(entity, body or {}, ignore, ids_only)
            except CriteriaError as exc:
                named = fake.name_max_limit or exc.code != "FRAMEWORK__QUERY_LIMIT_EXCEEDED"
                detail, parameters = (exc.detail, exc.parameters) if named else ("The limit is too high.", [])
                title = "Internal Server Error" if exc.status >= 500 else "Bad Request"
                self._reply(exc.status, errors(exc.status, exc.code, title, detail, parameters))
                return
            if "application/json" in accept:
                self._reply(200, {"total": total, "data": data, "aggregations": []})
            elif "*/*" in accept or "vnd.api+json" in accept:
                self._reply(200, json_api(data, total), kind="application/vnd.api+json")
            else:
                self._reply(415, errors(415, "0", "Unsupported Media Type", "All provided media types are unsupported."))

    return Handler
