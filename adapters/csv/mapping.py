"""Rows of one order → a Karla-shaped ``Record``, or ``Rejected`` entries naming file:line and field.

Header names are resolved once per file (``Fields``); an order's order-level values are the first
non-empty value of each column across its rows, so later line-item rows may leave them blank. The letters
a bad row becomes are worded in ``adapters.csv.letters`` (``no_order_then`` is re-exported here).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from datetime import timezone, tzinfo
from typing import Any

from pydantic import ValidationError

from adapters.base import Record, Rejected
from adapters.csv.config import FULFILLMENT_FIELDS, ORDER_FIELDS, Columns
from adapters.csv.letters import invalid, no_order_then, rejected, row_problem, row_problems
from adapters.csv.reader import Row, header_key
from adapters.normalise import money, parse_datetime
from connector.karla.carriers import carrier_fields
from connector.karla.models import OrderPlacement, Tracking

__all__ = ["Fields", "map_fulfillments", "map_order", "no_order_then", "order_conflicts"]

_MONEY = ("total_order_price", "shipping_price", "sub_total_price", "discount_price")
_ORDER_LEVEL = tuple(f for f in ORDER_FIELDS if f not in ("sku", "product_title", "quantity", "price", "image_url"))
_WHOLE = re.compile(r"\s*([+-]?\d+)(?:[.,]0{1,2})?\s*")  # 3, 3.0, 3,00: exact, not through a float (1e20)
_MAX_QUANTITY = 1_000_000  # more of one product in one order is a broken cell, not an order
# Karla's name of a value (the ``loc`` of a validation error) -> the field it was read from, where they differ
_ADDRESS = ("zip_code", "name", "company", "address_line_1", "address_line_2", "city", "province_code", "country_code", "phone")
_ORDER_SOURCE = {"email_id": "email", "address.street": "shipping_address_line_1",
                 **{f"address.{a}": f"shipping_{a}" for a in _ADDRESS}}
_PARCEL_SOURCE = {"tracking_placed_at": "shipped_at", "carrier_reference": "carrier", "tracking_company": "carrier",
                  "": "carrier"}  # a parcel refused as a whole: its carrier is not one Karla knows


class Fields:
    """Logical field → header name and column index, resolved once per file; names match whatever their case
    and surrounding blanks (``header_key``)."""

    def __init__(self, columns: Columns, header: list[str], decimal_comma: bool | None = None, tz: tzinfo = timezone.utc) -> None:
        self.names = header
        self.decimal_comma = decimal_comma  # how this file's numbers are read (see ``money``)
        self.tz = tz  # the zone of timestamps written without an offset
        self.header = {f: columns.header(f) for f in (*ORDER_FIELDS, *FULFILLMENT_FIELDS)}
        self.configured = set(columns.mapping)  # fields named in [sources.NAME.columns]
        self._keys = [header_key(name) for name in header]
        position = {key: index for index, key in enumerate(self._keys)}
        self.index = {f: position.get(header_key(h)) for f, h in self.header.items()}
        present = [i for i in (self.index[f] for f in _ORDER_LEVEL) if i is not None]
        # the order-level cells of a row in one C call, and the row width they need (``order_differences``)
        self._order_cells = (operator.itemgetter(*present), max(present) + 1) if present else None

    def duplicated(self, fields: tuple[str, ...]) -> list[str]:
        """Headers of ``fields`` that appear more than once: which column holds the value is unclear."""
        return [h for h in dict.fromkeys(self.header[f] for f in fields) if self._keys.count(header_key(h)) > 1]

    def missing(self, fields: tuple[str, ...], configured: bool = False) -> list[str]:
        """Headers of ``fields`` the file lacks (``configured``: only those named in [sources.NAME.columns])."""
        return [self.header[f] for f in fields if self.index[f] is None and (not configured or f in self.configured)]

    def get(self, row: Row, field: str) -> str:
        index = self.index[field]
        if index is None or index >= len(row.values):
            return ""
        return row.values[index]

    def raw(self, row: Row) -> dict[str, str]:
        return dict(zip(self.names, row.values))

    def order_differences(self, rows: list[Row]) -> dict[str, list[int]]:
        """Header -> lines of the rows whose non-empty values of that order-level field are not all the same.

        Runs for every order, so the usual cases cost one C-level pass per row: every row repeats the
        order's values, or the rows after the first leave them blank (compared as whole tuples)."""
        if self._order_cells is None or len(rows) < 2:
            return {}
        pick, width = self._order_cells
        values = [pick(row.values) for row in rows if len(row.values) >= width]
        if not values or values.count(values[0]) == len(values) or all(v == values[0] or not any(v) for v in values):
            return {}
        out: dict[str, list[int]] = {}
        for name in _ORDER_LEVEL:
            index = self.index[name]
            if index is None:
                continue
            lines = {row.line: row.values[index] for row in rows if index < len(row.values) and row.values[index]}
            if len(set(lines.values())) > 1:
                out[self.header[name]] = sorted(lines)
        return out

    def merged(self, rows: list[Row], names: tuple[str, ...]) -> dict[str, tuple[str, Row]]:
        """First non-empty value of each field, with the row it came from (for error locations)."""
        out: dict[str, tuple[str, Row]] = {}
        for name in names:
            index = self.index[name]
            if index is None:
                continue
            for row in rows:
                value = row.values[index] if index < len(row.values) else ""
                if value:
                    out[name] = (value, row)
                    break
        return out


class _Bad(ValueError):
    def __init__(self, row: Row, message: str) -> None:
        super().__init__(message)
        self.row = row


def _number(fields: Fields, field: str, text: str, row: Row) -> float | None:
    try:
        return money(text, decimal_comma=fields.decimal_comma)
    except ValueError as exc:  # "'1,234' is not a number: ambiguous, ..." (the reason tells what to fix)
        raise _Bad(row, f"{fields.header[field]} {exc}") from None


def _count(fields: Fields, field: str, text: str, row: Row) -> int | None:
    """A whole number read exactly: a float would send 99999999999999999999 as 1e20."""
    if whole := _WHOLE.fullmatch(text):
        value = int(whole[1])
    else:  # 1.000 with decimal_comma and the like: below 2**53 a float is exact, above it is refused below
        number = _number(fields, field, text, row)
        if number is None:
            return None
        if number != int(number):
            raise _Bad(row, f"{fields.header[field]} {text!r} is not a whole number")
        value = int(number)
    if field == "quantity" and value > _MAX_QUANTITY:
        raise _Bad(row, f"{fields.header[field]} {text!r} is more than {_MAX_QUANTITY:,}: not a plausible quantity")
    return value


def _date(fields: Fields, field: str, text: str, row: Row) -> str | None:
    try:
        value = parse_datetime(text, fields.tz)
    except ValueError:
        raise _Bad(row, f"{fields.header[field]} {text!r} is not a date (ISO 8601 or DD.MM.YYYY)") from None
    return value.isoformat() if value else None


def map_order(file: str, key: str, rows: list[Row], fields: Fields, default_currency: str | None) -> Record | list[Rejected]:
    problems = row_problems(file, key, rows, fields, ("order_number",))
    if problems:
        return problems
    try:
        order = OrderPlacement.model_validate(_order_data(rows, fields, default_currency))
    except _Bad as exc:
        return rejected(file, key, exc.row, str(exc), fields)
    except ValidationError as exc:
        return invalid(file, key, exc, rows, _product_rows(rows, fields), fields, _ORDER_SOURCE, f"order {key}")
    return Record(key=key, order=order, location=f"{file}:{rows[0].line}", version=file)


def order_conflicts(file: str, key: str, rows: list[Row], fields: Fields) -> str | None:
    """A warning when an order's rows disagree on an order-level value (a different email, address or
    total): the first non-empty one is sent. Values repeated on every row, or left blank, are normal."""
    if len(rows) < 2 or not (differing := fields.order_differences(rows)):
        return None
    where = ", ".join(f"{header} (lines {', '.join(map(str, lines))})" for header, lines in differing.items())
    return f"{file}: the rows of order {key} differ in {where}; the first non-empty value of each is sent"


def _order_data(rows: list[Row], fields: Fields, default_currency: str | None) -> dict[str, Any]:
    m = fields.merged(rows, _ORDER_LEVEL)
    v = lambda name: m[name][0] if name in m else None  # noqa: E731
    line1, line2 = v("shipping_address_line_1"), v("shipping_address_line_2")
    address = {
        "zip_code": v("shipping_zip_code") or "", "name": v("shipping_name"), "company": v("shipping_company"),
        "address_line_1": line1, "address_line_2": line2, "street": ", ".join(p for p in (line1, line2) if p) or None,
        "city": v("shipping_city"), "province_code": v("shipping_province_code"),
        "country_code": v("shipping_country_code"), "phone": v("shipping_phone"),
    }
    data: dict[str, Any] = {
        "order_number": fields.get(rows[0], "order_number"), "external_id": v("external_id") or "",
        "order_name": v("order_name"), "email_id": v("email"), "currency": v("currency") or default_currency,
        "address": {k: x for k, x in address.items() if x is not None},
        "products": [_product(r, fields) for r in _product_rows(rows, fields)],
    }
    if "order_placed_at" in m:
        data["order_placed_at"] = _date(fields, "order_placed_at", *m["order_placed_at"])
    for name in _MONEY:
        if name in m:
            data[name] = _number(fields, name, *m[name])
    if "expected_number_of_shipments" in m:
        data["expected_number_of_shipments"] = _count(fields, "expected_number_of_shipments", *m["expected_number_of_shipments"])
    return {k: x for k, x in data.items() if x is not None}


def _product_rows(rows: list[Row], fields: Fields) -> list[Row]:
    return [r for r in rows if fields.get(r, "sku") or fields.get(r, "product_title")]


def _product(row: Row, fields: Fields) -> dict[str, Any]:
    product: dict[str, Any] = {}
    for name, target in (("sku", "sku"), ("product_title", "title")):
        if value := fields.get(row, name):
            product[target] = value
    if text := fields.get(row, "quantity"):
        product["quantity"] = _count(fields, "quantity", text, row)
    if text := fields.get(row, "price"):
        product["price"] = _number(fields, "price", text, row)
    if image := fields.get(row, "image_url"):
        product["images"] = [{"src": image}]
    return product


def map_fulfillments(file: str, key: str, rows: list[Row], fields: Fields, carriers: Mapping[str, str]) -> list[Record | Rejected]:
    """The order's parcels that map cleanly (a record each, located at the parcel's first row: a letter
    Karla writes for one names its line, not the order's first), and a letter per row that does not.

    Each parcel stands alone: one bad parcel must not hold back its siblings, which would have no letter
    of their own and could be lost once the bad one is fixed in a later file. A row that cannot be
    placed in a parcel (broken, or without a tracking number) is a letter naming itself."""
    required = ("order_number", "tracking_number")
    what = f"this row of order {key} was" if key else None  # (``rejected``: "this row was" when it names none)
    out: list[Record | Rejected] = list(row_problems(file, key, rows, fields, required, what))
    parcels: dict[str, list[Row]] = {}
    for row in rows:
        if row_problem(row, fields, required) is None:
            parcels.setdefault(fields.get(row, "tracking_number"), []).append(row)
    records: list[Record] = []
    for number, parcel in parcels.items():
        what = f"parcel {number} of order {key}"
        try:
            tracking = _tracking(number, parcel, fields, carriers)
            records.append(Record(key=key, trackings=[tracking], location=f"{file}:{parcel[0].line}", version=file))
        except _Bad as exc:
            out += rejected(file, key, exc.row, str(exc), fields, what)
        except ValidationError as exc:
            items = [r for r in parcel if fields.get(r, "sku")]
            out += invalid(file, key, exc, parcel, items, fields, _PARCEL_SOURCE, what, what)
    return [*records, *out]


def _tracking(number: str, rows: list[Row], fields: Fields, carriers: Mapping[str, str]) -> Tracking:
    m = fields.merged(rows, ("carrier", "tracking_url", "shipped_at"))
    products = []
    for row in rows:
        if sku := fields.get(row, "sku"):
            product: dict[str, Any] = {"sku": sku}
            if text := fields.get(row, "quantity"):
                product["quantity"] = _count(fields, "quantity", text, row)
            products.append(product)
    data: dict[str, Any] = {"tracking_number": number, "products": products, **carrier_fields(m.get("carrier", ("",))[0], carriers)}
    if "tracking_url" in m:
        data["tracking_url"] = m["tracking_url"][0]
    if "shipped_at" in m:
        data["tracking_placed_at"] = _date(fields, "shipped_at", *m["shipped_at"])
    return Tracking.model_validate(data)
