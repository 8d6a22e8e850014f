"""The sandbox's HTTP handler: Karla's routes, auth, limits and validation, answering as the docs say."""

from __future__ import annotations

import base64
import binascii
import json
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from connector.karla.client import SANDBOX_HEADER
from connector.sandbox.faults import RequestLog, Scripted
from connector.sandbox.faults import error as _error
from connector.sandbox.validate import validate_item

if TYPE_CHECKING:
    from connector.sandbox.server import Sandbox

__all__ = ["handler_for"]


def handler_for(sb: Sandbox) -> type[BaseHTTPRequestHandler]:
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
            self.send_header(SANDBOX_HEADER, "karla-connector")  # its acknowledgements are not the real Karla's
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            header = None
            if retry_after is not None:
                header = f"{retry_after:g}"
                self.send_header("Retry-After", header)
            # logged before the answer leaves: whoever got the answer can already see it in ``requests``
            sb.record(RequestLog(self.command, urlsplit(self.path).path, status, length, items, time.monotonic(), header,
                                 self.headers.get("Karla-Version")))
            self.end_headers()
            self.wfile.write(data)

        def _auth(self, slug: str | None) -> bool:
            value = self.headers.get("Authorization", "")
            if not value.startswith("Basic "):
                return self._deny(400, "Missing or malformed authentication credentials")
            try:
                user, _, key = base64.b64decode(value[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return self._deny(400, "Missing or malformed authentication credentials")
            if sb.credentials.get(user) != key or not key:
                return self._deny(401, "Invalid username or API key")
            if not sb.key_fits(user, slug):  # a shop's own key, used for another shop (``Sandbox.scope_keys``)
                return self._deny(401, "Invalid username or API key")
            return True

        def _shop_exists(self, slug: str | None) -> bool:
            if sb.shops is None or slug in sb.shops:
                return True
            self._drain()
            self._reply(404, _error("shop_not_found", "Unable to find shop"))
            return False

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
                    return unquote(parts[2]), "orders"
                if len(parts) == 5 and parts[4] == "bulk":
                    return unquote(parts[2]), "bulk"
            return None, ""

        def do_GET(self) -> None:  # noqa: N802
            slug, route = self._route()
            if route != "orders":
                return self._not_found()
            if not self._auth(slug) or not self._shop_exists(slug):
                return
            if sb.faults.down:
                return self._reply(503, _error("sandbox_fault", "Karla is down"))
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
            if not self._auth(slug) or not self._shop_exists(slug):
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

        def _scripted(self, answer: Scripted, length: int, items: int = 0) -> None:
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
                clash = sb.store.clash(slug, item, {})
                if clash:
                    errors = [{"loc": ["body", "order", "external_id"], "msg": clash, "type": "order_exists"}]
                    return self._reply(409, _error("order_exists", clash, errors), 1, length)
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
                claimed: dict[str, str] = {}  # external_id -> order number, of this call's items
                for index, item in enumerate(items):
                    if not isinstance(item, dict):
                        continue
                    clash = sb.store.clash(slug, item, claimed)
                    if clash:
                        errors.append({"loc": ["body", index, "order", "external_id"], "msg": clash, "type": "order_exists"})
                    if item.get("order") is not None:
                        created.add(("order_number", str(item["order"].get("order_number"))))
                        created.add((item.get("id_type", "order_number"), str(item.get("id"))))
                    elif not sb.store.exists_after(slug, item, created):
                        errors.append({"loc": ["body", index, "id"], "msg": f"Order {item.get('id')} not found", "type": "order_not_found"})
                if errors and all(e["type"] == "order_exists" for e in errors):  # Karla: 409, "An order with that ID already exists"
                    return self._reply(409, _error("order_exists", errors[0]["msg"], errors), len(items), length)
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
