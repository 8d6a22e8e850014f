"""The fake's Criteria engine: filters, sort, paging, associations and ``includes`` over stored entities.

Semantics follow Shopware's DAL as far as the adapter can observe them: a filter path through a to-many
association matches when any related row matches; NULL never matches a range; range values are raw
strings, so a date value in another format than ``Y-m-d H:i:s.v`` is refused as MariaDB would; an
association that was not requested serialises as ``null``; ``includes`` keeps the listed fields of an
``apiAlias`` and always ``apiAlias`` itself. ``check_fields`` refuses a filter or sort on a field the entity
does not have, as the DAL does (400 FRAMEWORK__UNMAPPED_FIELD), for entities whose field set a test pins.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

__all__ = ["CriteriaError", "LimitError", "check_fields", "check_filters", "evaluate", "serialize", "json_api", "unservable"]

Entity = dict[str, Any]

# Fields that are associations, per apiAlias; everything else is a plain field.
ASSOCIATIONS: dict[str, set[str]] = {
    "order": {"lineItems", "deliveries", "addresses", "orderCustomer", "currency", "stateMachineState", "salesChannel",
              "tags", "billingAddress", "transactions", "documents", "language"},
    "order_line_item": {"cover", "product", "parent", "children", "order", "orderDeliveryPositions", "promotion"},
    "order_delivery": {"shippingOrderAddress", "shippingMethod", "stateMachineState", "positions", "order"},
    "order_delivery_position": {"orderLineItem", "orderDelivery"},
    "order_address": {"country", "countryState", "salutation", "order"},
    "order_customer": {"customer", "salutation", "order"},
    "customer": {"group", "tags"},
    "state_machine_history": {"stateMachine", "fromStateMachineState", "toStateMachineState", "user"},
    "state_machine_state": {"stateMachine"},
    "number_range": {"type", "numberRangeSalesChannels", "state", "translations"},
}
_STORAGE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$")


class CriteriaError(Exception):
    """A request Shopware would refuse; ``status``/``code`` become the error response."""

    def __init__(self, status: int, code: str, detail: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.parameters = status, code, detail, parameters or {}


class LimitError(CriteriaError):
    def __init__(self, max_limit: int, limit: int) -> None:
        super().__init__(400, "FRAMEWORK__QUERY_LIMIT_EXCEEDED",
                         f"The limit must be lower than or equal to MAX_LIMIT(={max_limit}). Given: {limit}",
                         {"maxLimit": max_limit, "limit": limit})


def _values(entity: Any, path: list[str]) -> list[Any]:
    if isinstance(entity, list):
        return [v for item in entity for v in _values(item, path)]
    if not path:
        return [entity]
    if not isinstance(entity, dict):
        return []
    return _values(entity.get(path[0]), path[1:])


def _is_date(field: str) -> bool:
    last = field.split(".")[-1]
    return last.endswith(("At", "DateTime", "Date"))


def _date(value: str, strict: bool) -> datetime:
    if strict and not _STORAGE.match(value):
        raise CriteriaError(500, "FRAMEWORK__SQL_ERROR", f"SQLSTATE[22007]: Invalid datetime format: '{value}'")
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _in_range(value: Any, parameters: dict[str, Any], field: str) -> bool:
    if value is None:
        return False
    if _is_date(field):
        value = _date(str(value), strict=False)
        bounds = {op: _date(str(v), strict=True) for op, v in parameters.items()}
    else:
        bounds = {op: float(v) for op, v in parameters.items()}
        value = float(value)
    checks = {"gt": lambda b: value > b, "gte": lambda b: value >= b, "lt": lambda b: value < b, "lte": lambda b: value <= b}
    return all(checks[op](bound) for op, bound in bounds.items())


def matches(entity: Entity, f: dict[str, Any]) -> bool:
    kind = f.get("type")
    if kind in ("multi", "not", "and", "or", "nand", "nor"):
        operator = {"and": "AND", "or": "OR", "nand": "AND", "nor": "OR"}.get(kind, str(f.get("operator", "AND")).upper())
        results = [matches(entity, q) for q in f.get("queries") or []]
        hit = any(results) if operator == "OR" else all(results)
        return not hit if kind in ("not", "nand", "nor") else hit
    field = str(f.get("field", "")).removeprefix("order.")
    values = _values(entity, field.split("."))
    if kind == "equals":
        return any(v == f.get("value") or (v is not None and str(v) == str(f.get("value"))) for v in values)
    if kind == "equalsAny":
        wanted = f.get("value")
        wanted = wanted.split("|") if isinstance(wanted, str) else list(wanted or [])
        return any(v is not None and str(v) in map(str, wanted) for v in values)
    if kind == "range":
        return any(_in_range(v, f.get("parameters") or {}, field) for v in values)
    raise CriteriaError(400, "FRAMEWORK__INVALID_FILTER_QUERY", f"filter type {kind!r} not supported by the fake")


def _fields(filters: list[dict[str, Any]]) -> list[str]:
    found = []
    for f in filters:
        found += _fields(f.get("queries") or []) if "queries" in f else [str(f.get("field", ""))]
    return found


def check_filters(filters: list[dict[str, Any]], pointer: str = "/filter") -> None:
    """``QueryStringParser`` refuses an ``equalsAny`` without values (400; 'Parameter "value" for equalsAny
    filter is missing.', since 6.7 '... does not contain any value.') before any row is read."""
    for index, f in enumerate(filters):
        if "queries" in f:
            check_filters(f.get("queries") or [], f"{pointer}/{index}/queries")
        elif f.get("type") == "equalsAny" and not f.get("value"):
            raise CriteriaError(400, "FRAMEWORK__INVALID_FILTER_QUERY", 'Parameter "value" for equalsAny filter is missing.',
                                {"pointer": f"{pointer}/{index}/value"})


def check_fields(criteria: dict[str, Any], alias: str, known: set[str]) -> None:
    """The DAL resolves every filter and sort path against the definition: an unknown first part is a 400."""
    paths = _fields(criteria.get("filter") or []) + [str(s.get("field", "")) for s in criteria.get("sort") or []]
    for path in paths:
        name = path.removeprefix(f"{alias}.").split(".")[0]
        if name not in known:
            raise CriteriaError(400, "FRAMEWORK__UNMAPPED_FIELD", f'Field "{name}" in entity "{alias}" was not found.',
                                {"field": name, "entity": alias})


def _sorted(rows: list[Entity], sort: list[dict[str, Any]]) -> list[Entity]:
    for spec in reversed(sort or []):
        field = str(spec["field"]).split(".")

        def key(row: Entity, field: list[str] = field) -> tuple[int, Any]:
            found = _values(row, field)
            value = found[0] if found else None
            return (0, "") if value is None else (1, value)  # NULLs first, as MySQL sorts ASC

        rows = sorted(rows, key=key, reverse=str(spec.get("order", "ASC")).upper() == "DESC")
    return rows


def evaluate(rows: list[Entity], criteria: dict[str, Any], max_limit: int | None) -> tuple[list[Entity], int]:
    """The page of root rows the criteria select, and the ``total`` Shopware would report."""
    check_filters(criteria.get("filter") or [])
    if criteria.get("ids"):
        wanted = criteria["ids"] if isinstance(criteria["ids"], list) else str(criteria["ids"]).split("|")
        selected = [r for r in rows if r.get("id") in wanted]
        return _sorted(selected, criteria.get("sort") or []), len(selected)
    limit = criteria.get("limit", max_limit)
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise CriteriaError(400, "FRAMEWORK__INVALID_LIMIT_QUERY", "The limit parameter must be a positive integer.")
    if limit is not None and max_limit is not None and limit > max_limit:
        raise LimitError(max_limit, limit)
    filters = sorted(criteria.get("filter") or [], key=lambda f: f.get("type") != "range")  # cheap keyset test first
    selected = [r for r in rows if all(matches(r, f) for f in filters)]
    selected = _sorted(selected, criteria.get("sort") or [])
    offset = (limit or 0) * (int(criteria.get("page", 1)) - 1)
    page = selected[offset:offset + limit] if limit else selected
    mode = str(criteria.get("total-count-mode", 0))
    if mode in ("1", "exact"):
        return page, len(selected)
    if mode in ("2", "next-pages") and limit:
        return page, min(len(selected) - offset, limit * 6 + 1)
    return page, len(page)


def unservable(page: list[Entity], broken: dict[str, str], max_rows: int | None) -> None:
    """A loaded order page Shopware answers with a 500: it holds an order it cannot load or encode
    (``broken``: id -> message), or more rows than PHP's memory limit allows."""
    for row in page:
        if row.get("id") in broken:
            raise CriteriaError(500, "0", broken[row["id"]])
    if max_rows is not None and len(page) > max_rows:
        raise CriteriaError(500, "0", "Allowed memory size of 536870912 bytes exhausted (tried to allocate 20480 bytes)")


def serialize(entity: Entity, associations: dict[str, Any], includes: dict[str, list[str]]) -> Entity:
    """An entity as the JSON response shows it: unrequested associations null, then ``includes``."""
    alias = entity.get("apiAlias", "")
    out: Entity = {}
    for key, value in entity.items():
        if key in ASSOCIATIONS.get(alias, set()):
            if key not in associations or value is None:
                out[key] = None
                continue
            sub = associations[key] or {}
            if isinstance(value, list):
                items = [v for v in value if all(matches(v, f) for f in sub.get("filter") or [])]
                items = _sorted(items, sub.get("sort") or [])[: sub.get("limit") or None]
                out[key] = [serialize(v, sub.get("associations") or {}, includes) for v in items]
            else:
                out[key] = serialize(value, sub.get("associations") or {}, includes)
        else:
            out[key] = _struct(value, includes)
    if alias in includes:
        out = {k: v for k, v in out.items() if k in includes[alias] or k == "apiAlias"}
    return out


def _struct(value: Any, includes: dict[str, list[str]]) -> Any:
    """A struct field (a price, its taxes) is filtered by its own ``apiAlias`` as well, as
    ``JsonEntityEncoder`` does; plain JSON (a payload, ``translated``) has none and stays whole."""
    if isinstance(value, list):
        return [_struct(v, includes) for v in value]
    if not isinstance(value, dict) or "apiAlias" not in value:
        return value
    out = {k: _struct(v, includes) for k, v in value.items()}
    alias = value["apiAlias"]
    return {k: v for k, v in out.items() if k in includes[alias] or k == "apiAlias"} if alias in includes else out


def json_api(rows: list[Entity], total: int) -> dict[str, Any]:
    """What ``Accept: */*`` gets: JSON:API documents (the trap the adapter must not fall into)."""
    data = [{"id": r.get("id"), "type": r.get("apiAlias"), "attributes": {k: v for k, v in r.items()
             if k not in ASSOCIATIONS.get(r.get("apiAlias", ""), set())}, "relationships": {}} for r in rows]
    return {"data": data, "included": [], "links": {}, "meta": {"totalCountMode": 0, "total": total}, "aggregations": []}
