"""Rows of one order → a Karla-shaped ``Record``, or ``Rejected`` entries naming file:line and field.

Header names are resolved once per file (``adapters.csv.fields``); an order's order-level values are the first
non-empty value of each column across its rows, so later line-item rows may leave them blank. The letters
a bad row becomes are worded in ``adapters.csv.letters`` (``no_order_then`` is re-exported here), and a line
item's product (an order's or a parcel's) is read in ``adapters.csv.products``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from adapters.base import Record, Rejected
from adapters.csv.fields import ORDER_LEVEL, Fields
from adapters.csv.letters import Broken, invalid, no_order_then, rejected, row_problem, row_problems
from adapters.csv.products import Bad as _Bad
from adapters.csv.products import count as _count
from adapters.csv.products import discount_lines, parcel_products, product, product_rows
from adapters.csv.products import number as _number
from adapters.csv.reader import Row
from adapters.normalise import country_code, currencies, parse_datetime
from connector.karla.carriers import carrier_fields
from connector.karla.models import OrderPlacement, Tracking

__all__ = ["Broken", "Fields", "map_fulfillments", "map_order", "no_order_then", "order_conflicts"]

_MONEY = ("total_order_price", "shipping_price", "sub_total_price", "discount_price")
_EARLIEST = 2000  # no order or parcel Karla sees is older: a date before it is a placeholder
# Tracking numbers listed in one cell: line breaks, "," ";" "|" or " / " between them (a number holds none of these)
_LISTED = re.compile(r"[\x00-\x1f\x7f,;|]| / ")
_SEPARATORS = re.compile(r"\s*(?:[\r\n,;|]|\s/\s)\s*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SIGNLESS = re.compile(r"[\d.,+\-\s]*")  # amounts written without a currency sign or code
_UNSIGNED = re.compile(r"[\d.,\s]*")  # unit prices none of which is negative or names a currency
# Karla's name of a value (the ``loc`` of a validation error) -> the field it was read from, where they differ
_ADDRESS = ("zip_code", "name", "company", "address_line_1", "address_line_2", "city", "province_code", "country_code", "phone")
_ORDER_SOURCE = {"email_id": "email", "address.street": "shipping_address_line_1",
                 **{f"address.{a}": f"shipping_{a}" for a in _ADDRESS}}
_PARCEL_SOURCE = {"tracking_placed_at": "shipped_at", "carrier_reference": "carrier", "tracking_company": "carrier",
                  "": "carrier"}  # a parcel refused as a whole: its carrier is not one Karla knows


def _date(fields: Fields, field: str, text: str, row: Row) -> str | None:
    try:
        value = parse_datetime(text, fields.tz)
    except ValueError:
        raise _Bad(row, f"{fields.header[field]} {text!r} is not a date (ISO 8601 or DD.MM.YYYY)") from None
    if value and value.year < _EARLIEST:  # 1900-01-01, 0001-01-01: an ERP's "no date"; Karla would plan from it
        raise _Bad(row, f"{fields.header[field]} {text!r} is before {_EARLIEST}: a placeholder, not a date "
                   "(leave the cell empty when the date is unknown)")
    return value.isoformat() if value else None


def map_order(file: str, key: str, rows: list[Row], fields: Fields, default_currency: str | None,
              broken: Broken | None = None) -> Record | list[Rejected]:
    """The order's record, or letters; none for an order a broken row elsewhere names (``broken.held``): its
    letter says it is not sent, and without the rows that row swallowed it would replace Karla's whole order."""
    problems = row_problems(file, key, rows, fields, ("order_number",), broken=broken)
    if problems or (broken is not None and key in broken.held):
        return problems
    try:
        order = OrderPlacement.model_validate(_order_data(rows, fields, default_currency))
    except _Bad as exc:
        return rejected(file, key, exc.row, str(exc), fields)
    except ValidationError as exc:
        return invalid(file, key, exc, rows, product_rows(rows, fields), fields, _ORDER_SOURCE, f"order {key}")
    return Record(key=key, order=order, location=f"{file}:{rows[0].line}", version=file)


def order_conflicts(file: str, key: str, rows: list[Row], fields: Fields) -> str | None:
    """A warning when an order's rows disagree on an order-level value (a different email, address or
    total): the first non-empty one is sent. Values repeated on every row, or left blank, are normal."""
    if len(rows) < 2 or not (differing := fields.order_differences(rows)):
        return None
    where = ", ".join(f"{header} (lines {', '.join(map(str, lines))})" for header, lines in differing.items())
    return f"{file}: the rows of order {key} differ in {where}; the first non-empty value of each is sent"


def _order_data(rows: list[Row], fields: Fields, default_currency: str | None) -> dict[str, Any]:
    m = fields.merged(rows, ORDER_LEVEL)
    v = lambda name: m[name][0] if name in m else None  # noqa: E731
    line1, line2 = v("shipping_address_line_1"), v("shipping_address_line_2")
    address = {
        "zip_code": v("shipping_zip_code") or "", "name": v("shipping_name"), "company": v("shipping_company"),
        "address_line_1": line1, "address_line_2": line2, "street": ", ".join(p for p in (line1, line2) if p) or None,
        "city": v("shipping_city"), "province_code": v("shipping_province_code"),
        "country_code": _country(fields, m.get("shipping_country_code")), "phone": v("shipping_phone"),
    }
    lines = [row for row in rows if fields.is_line(row)]
    if _plain(fields, m, lines):  # the usual order: no discount line, no currency sign to check
        items, products, discounts = lines, [product(row, fields) for row in lines], []
        currency = v("currency") or default_currency
    else:
        items, products, discounts = discount_lines(lines, fields)
        currency = _currency(fields, m, items, v("currency"), default_currency)
    data: dict[str, Any] = {
        "order_number": fields.get(rows[0], "order_number"), "external_id": v("external_id") or "",
        "order_name": v("order_name"), "email_id": v("email"), "currency": currency,
        "address": {k: x for k, x in address.items() if x is not None}, "products": products,
    }
    if "order_placed_at" in m:
        data["order_placed_at"] = _date(fields, "order_placed_at", *m["order_placed_at"])
    for name in _MONEY:
        if name in m:
            data[name] = _number(fields, name, *m[name])
    if data.get("discount_price"):  # "(5.00)", "-5,00": ERPs write money off negative, Karla's amount is positive
        data["discount_price"] = abs(data["discount_price"])
    if discounts:  # as the Shopware adapter sends discount lines: each a fixed_amount, their sum the discount_price
        data["discounts"] = discounts
        if not data.get("discount_price"):  # missing or 0,00 (an ERP's default): their sum, not 0 beside them
            data["discount_price"] = round(sum(float(d["amount"]) for d in discounts), 2)
    if "expected_number_of_shipments" in m:  # 0 is an ERP's empty numeric cell: left out, Karla's default (1) applies
        data["expected_number_of_shipments"] = _count(fields, "expected_number_of_shipments", *m["expected_number_of_shipments"]) or None
    return {k: x for k, x in data.items() if x is not None}


def _plain(fields: Fields, m: dict[str, tuple[str, Row]], lines: list[Row]) -> bool:
    """Whether every unit price is a plain number (no sign, no parentheses, no currency) and no amount names a
    currency: then no line is a discount and ``_currency`` has nothing to check. Two C calls per order."""
    i = fields.index["price"]
    prices = "".join([row.values[i] for row in lines]) if i is not None else ""  # (``is_line``: wide enough rows)
    amounts = "".join([m[name][0] for name in _MONEY if name in m])
    return _UNSIGNED.fullmatch(prices) is not None and _SIGNLESS.fullmatch(amounts) is not None


def _country(fields: Fields, cell: tuple[str, Row] | None) -> str | None:
    """Karla takes ISO 3166-1 alpha-2 only: ``Deutschland``, ``DEU`` and ``UK`` are mapped, not refused or sent."""
    if cell is None:
        return None
    code = country_code(cell[0])
    if code is None:
        raise _Bad(cell[1], f"{fields.header['shipping_country_code']} {cell[0]!r} is not an ISO 3166-1 alpha-2 code such as DE")
    return code


def _currency(fields: Fields, m: dict[str, tuple[str, Row]], items: list[Row], cell: str | None,
              default: str | None) -> str | None:
    """The order's currency: its cell, else ``default_currency``, else the one its amounts' sign names (``20,00 €``).

    An amount whose sign says another currency (``$20.00`` in a EUR order), or whose sign could be several
    (``$``) where nothing names the currency (Karla would take it as EUR), is refused, naming its column."""
    currency = cell or default
    texts = [m[name][0] for name in _MONEY if name in m]
    if (i := fields.index["price"]) is not None:
        texts += [row.values[i] for row in items if i < len(row.values)]
    if _SIGNLESS.fullmatch("".join(texts)):  # the usual order, plain numbers only: one C call
        return currency
    amounts = [(name, *m[name]) for name in _MONEY if name in m]
    amounts += [("price", fields.get(row, "price"), row) for row in items]
    for name, text, row in amounts:
        if not text or not (codes := currencies(text)):
            continue
        if currency and currency.upper() not in codes:
            said = (f"the order's {fields.header['currency']} says" if cell
                    else "default_currency says" if default else "the order's other amounts say")
            raise _Bad(row, f"{fields.header[name]} {text!r} is in {' or '.join(codes)}, but {said} {currency}")
        if not currency and len(codes) > 1:
            raise _Bad(row, f"{fields.header[name]} {text!r} names no single currency ({' or '.join(codes)}?) and "
                       f"{fields.header['currency']} is empty (Karla would take it as EUR): write the currency code in "
                       f"{fields.header['currency']}, or set default_currency")
        currency = currency or codes[0]
    return currency


def map_fulfillments(file: str, key: str, rows: list[Row], fields: Fields, carriers: Mapping[str, str],
                     left_out: Callable[[str], None] = lambda said: None, broken: Broken | None = None) -> list[Record | Rejected]:
    """The order's parcels that map cleanly (a record each, located at the parcel's first row: a letter
    Karla writes for one names its line, not the order's first), and a letter per row that does not.
    ``left_out`` is told of a product's price that cannot be read, left out as the parcel goes.

    Each parcel stands alone: one bad parcel must not hold back its siblings, which would have no letter
    of their own and could be lost once the bad one is fixed in a later file. A row that cannot be
    placed in a parcel (broken, or without a tracking number) is a letter naming itself, and one per further
    order a broken row names (``broken``): the parcels left of those go, and `dlq retry` re-sends them whole."""
    required = ("order_number", "tracking_number")
    what = f"this row of order {key} was" if key else None  # (``rejected``: "this row was" when it names none)
    out: list[Record | Rejected] = list(row_problems(file, key, rows, fields, required, True, broken))
    parcels: dict[str, list[Row]] = {}
    for row in rows:
        if row_problem(row, fields, required) is None:
            try:
                for number in _numbers(fields, row):
                    parcels.setdefault(number, []).append(row)
            except _Bad as exc:
                out += rejected(file, key, exc.row, str(exc), fields, what)
    records: list[Record] = []
    for number, parcel in parcels.items():
        what = f"parcel {number} of order {key}"
        try:
            note = f"left out of that product of {what}, which is sent without it"
            tracking = _tracking(number, parcel, fields, carriers, lambda exc: left_out(f"{file}:{exc.row.line}: {exc}; {note}"))
            records.append(Record(key=key, trackings=[tracking], location=f"{file}:{parcel[0].line}", version=file))
        except _Bad as exc:
            out += rejected(file, key, exc.row, str(exc), fields, what)
        except ValidationError as exc:
            items = parcel_products(parcel, fields)[0]  # (the letter names the row of ``products.N``)
            out += invalid(file, key, exc, parcel, items, fields, _PARCEL_SOURCE, what, what)
    return [*records, *out]


def _numbers(fields: Fields, row: Row) -> list[str]:
    """The tracking numbers of a row: an ERP lists a shipment's parcels in one cell ("JJD1 / JJD2", one a line),
    each a parcel of its own with the row's products. Single spaces stay (UPS writes "1Z 999 AA1 …")."""
    cell = fields.get(row, "tracking_number")
    if _LISTED.search(cell) is None:  # the usual cell, one number: a single C-level search
        return [cell]
    numbers = list(dict.fromkeys(n for n in _SEPARATORS.split(cell) if n))
    header = fields.header["tracking_number"]
    if bad := next((n for n in numbers if _CONTROL.search(n)), None):
        raise _Bad(row, f"{header} {bad!r} holds a control character (a tab, a stray byte): not a tracking number")
    if not numbers:
        raise _Bad(row, f"{header} {cell!r} holds no tracking number")
    return numbers


def _tracking(number: str, rows: list[Row], fields: Fields, carriers: Mapping[str, str],
              left_out: Callable[[_Bad], None]) -> Tracking:
    m = fields.merged(rows, ("carrier", "tracking_url", "shipped_at"))
    products = parcel_products(rows, fields, left_out)[1]
    data: dict[str, Any] = {"tracking_number": number, "products": products, **carrier_fields(m.get("carrier", ("",))[0], carriers)}
    if "tracking_url" in m:
        data["tracking_url"] = m["tracking_url"][0]
    if "shipped_at" in m:
        data["tracking_placed_at"] = _date(fields, "shipped_at", *m["shipped_at"])
    return Tracking.model_validate(data)
