"""The subset of Shopify's search syntax the fake understands, with Shopify's documented quirks.

Terms ``field:value`` with comparators ``>= <= > <``, connectives ``AND``/``OR``/``NOT`` (AND implied
between terms), parentheses. Quirks kept on purpose so the adapter cannot rely on what Shopify does not
do: an unquoted date-time loses its time part, and ``>``/``<`` act like ``>=``/``<=``. Unknown fields are
an error here (Shopify would silently ignore them, which is worse for a test).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

__all__ = ["SearchError", "compile_search", "fulfillment_status"]

Predicate = Callable[[dict[str, Any]], bool]
_TOKEN = re.compile(r"""\s*(?:(?P<open>\()|(?P<close>\))|(?P<field>\w+):(?P<op>>=|<=|>|<|)(?P<value>'[^']*'|"[^"]*"|[^\s()]+)|(?P<word>\S+))""")
_STATUS = {
    "unshipped": {"UNFULFILLED"}, "partial": {"PARTIALLY_FULFILLED"}, "shipped": {"FULFILLED"},
    "fulfilled": {"FULFILLED"}, "unfulfilled": {"UNFULFILLED", "PARTIALLY_FULFILLED"},
}


class SearchError(ValueError):
    pass


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def fulfillment_status(order: dict[str, Any]) -> str:
    """Shopify's ``displayFulfillmentStatus``: units removed by an edit or refunded need no shipping, so an
    order whose remaining units all shipped is FULFILLED (``currentQuantity``, not ``quantity``)."""
    ordered = sum(int(li.get("currentQuantity", li["quantity"])) for li in order["lineItems"])
    shipped = sum(
        int(fli["quantity"]) for f in order["fulfillments"] if f["status"] not in ("CANCELLED", "ERROR", "FAILURE")
        for fli in f["fulfillmentLineItems"]
    )
    if shipped <= 0:
        return "UNFULFILLED"
    return "FULFILLED" if shipped >= ordered else "PARTIALLY_FULFILLED"


def _term(field: str, op: str, raw: str) -> Predicate:
    quoted = raw[:1] in ("'", '"')
    value = raw[1:-1] if quoted else raw
    if field in ("updated_at", "created_at"):
        key = "updatedAt" if field == "updated_at" else "createdAt"
        bound = _time(value if quoted else value[:10])  # Shopify: unquoted dates lose their time part
        return _compare(lambda o: _time(o[key]), op, bound)
    if field == "id":
        return _compare(lambda o: int(o["id"].rsplit("/", 1)[-1]), op, int(value))
    if field == "fulfillment_status":
        if value not in _STATUS:
            raise SearchError(f"unknown fulfillment_status {value!r}")
        return lambda o: fulfillment_status(o) in _STATUS[value]
    if field == "status":
        checks = {"open": lambda o: not o.get("closedAt") and not o.get("cancelledAt"), "closed": lambda o: bool(o.get("closedAt")),
                  "cancelled": lambda o: bool(o.get("cancelledAt")), "not_closed": lambda o: not o.get("closedAt")}
        return checks[value]
    raise SearchError(f"the fake does not support the search field {field!r}")


def _compare(get: Callable[[dict[str, Any]], Any], op: str, bound: Any) -> Predicate:
    if op in (">=", ">"):  # reported: Shopify's > behaves like >=
        return lambda o: get(o) >= bound
    if op in ("<=", "<"):
        return lambda o: get(o) <= bound
    return lambda o: get(o) == bound


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = [m for m in _TOKEN.finditer(text) if m.group(0).strip()]
        self.at = 0

    def peek(self) -> re.Match[str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def word(self, expected: str) -> bool:
        token = self.peek()
        if token is not None and token.group("word") == expected:
            self.at += 1
            return True
        return False

    def expression(self) -> Predicate:
        parts = [self.conjunction()]
        while self.word("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda o: any(p(o) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while True:
            token = self.peek()
            if token is None or token.group("close") or token.group("word") == "OR":
                break
            self.word("AND")
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda o: all(p(o) for p in parts))

    def unary(self) -> Predicate:
        if self.word("NOT"):
            inner = self.unary()
            return lambda o: not inner(o)
        token = self.peek()
        if token is None:
            raise SearchError("search ends too early")
        self.at += 1
        if token.group("open"):
            inner = self.expression()
            closing = self.peek()
            if closing is None or not closing.group("close"):
                raise SearchError("missing )")
            self.at += 1
            return inner
        if token.group("field"):
            return _term(token.group("field"), token.group("op"), token.group("value"))
        raise SearchError(f"the fake does not support free-text search {token.group(0).strip()!r}")


def compile_search(text: str | None) -> Predicate:
    if not text or not text.strip():
        return lambda o: True
    parser = _Parser(text)
    predicate = parser.expression()
    if parser.peek() is not None:
        raise SearchError(f"unexpected {parser.peek().group(0)!r}")  # type: ignore[union-attr]
    return predicate
