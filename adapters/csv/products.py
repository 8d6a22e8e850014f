"""A line item's row → a Karla product, read the same for an order's products and a parcel's.

Kept apart from ``adapters.csv.mapping`` (the order and parcel around them): a parcel row of a combined export
(or of a parcel file with product columns) carries the title, price and image the order's row does, and Karla
keeps a shipment's products apart from the order's, so both must read them alike, with the same letters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from adapters.csv.fields import Fields
from adapters.csv.reader import Row
from adapters.normalise import money

__all__ = ["Bad", "count", "discount_lines", "number", "parcel_products", "product", "product_rows"]

_WHOLE = re.compile(r"\s*([+-]?\d+)(?:[.,]0{1,2})?\s*")  # 3, 3.0, 3,00: exact, not through a float (1e20)
_MAX_QUANTITY = 1_000_000  # more of one product in one order is a broken cell, not an order


class Bad(ValueError):
    """A cell that cannot be read: the letter names ``row`` (its file:line) and the message its column."""

    def __init__(self, row: Row, message: str) -> None:
        super().__init__(message)
        self.row = row


def number(fields: Fields, field: str, text: str, row: Row) -> float | None:
    try:
        return money(text, decimal_comma=fields.decimal_comma)
    except ValueError as exc:  # "'1,234' is not a number: ambiguous, ..." (the reason tells what to fix)
        raise Bad(row, f"{fields.header[field]} {exc}") from None


def count(fields: Fields, field: str, text: str, row: Row) -> int | None:
    """A whole number read exactly: a float would send 99999999999999999999 as 1e20."""
    if whole := _WHOLE.fullmatch(text):
        value = int(whole[1])
    else:  # 1.000 with decimal_comma and the like: below 2**53 a float is exact, above it is refused below
        amount = number(fields, field, text, row)
        if amount is None:
            return None
        if amount != int(amount):
            raise Bad(row, f"{fields.header[field]} {text!r} is not a whole number")
        value = int(amount)
    if field == "quantity" and value > _MAX_QUANTITY:
        raise Bad(row, f"{fields.header[field]} {text!r} is more than {_MAX_QUANTITY:,}: not a plausible quantity")
    return value


def product(row: Row, fields: Fields, left_out: Callable[[Bad], None] | None = None) -> dict[str, Any]:
    """The row's sku, title, quantity, price and image, each where the file has its column and the cell is filled.
    ``left_out``: a price that cannot be read is told to it and left out, not raised (a parcel's product)."""
    sku, title, quantity, price, image = fields.product_cells(row)
    out: dict[str, Any] = {}
    if sku:
        out["sku"] = sku
    if title:
        out["title"] = title
    if quantity:
        out["quantity"] = count(fields, "quantity", quantity, row)
    if price:
        try:
            out["price"] = number(fields, "price", price, row)
        except Bad as exc:
            if left_out is None:
                raise
            left_out(exc)
    if image:
        out["images"] = [{"src": image}]
    return out


def _discount(item: dict[str, Any]) -> bool:
    """A line with a negative price (``Rabatt;1;-5,00``) takes money off: a discount, no product."""
    return item.get("price") is not None and item["price"] < 0


def discount_lines(rows: list[Row], fields: Fields) -> tuple[list[Row], list[dict[str, Any]], list[dict[str, Any]]]:
    """The order's product rows and products, and its discounts: a line with a negative price takes money off,
    as Shopware's discount lines do; sent as a product it would be one priced -5."""
    items, products, discounts = [], [], []
    for row in rows:
        if not fields.is_line(row):  # a quantity or price alone counts too: such a row was dropped without a word
            continue
        item = product(row, fields)
        if _discount(item):
            quantity = item.get("quantity")
            amount = abs(item["price"] * (quantity if quantity is not None else 1))
            code = item.get("title") or item.get("sku") or "discount"
            discounts.append({"code": code, "amount": str(round(amount, 2)), "type": "fixed_amount"})
        else:
            items.append(row)
            products.append(item)
    return items, products, discounts


def product_rows(rows: list[Row], fields: Fields) -> list[Row]:
    """The rows sent as products, in order: a refused ``products.N`` is the N-th (``letters.invalid``)."""
    return discount_lines(rows, fields)[0]


def parcel_products(rows: list[Row], fields: Fields, left_out: Callable[[Bad], None] = lambda exc: None,
                    ) -> tuple[list[Row], list[dict[str, Any]]]:
    """A parcel's product rows (those naming a product: a sku or a title) and their products, with the title, price
    and image its rows carry (karla-docs: the per-shipment products tell customers which items are in which
    package; the tracking page shows their images). Nothing is taken from the order: a parcel file without these
    columns sends sku and quantity. A discount line shipped with the parcel is no product of it, as of the order.

    Only a bad quantity refuses the parcel: a price that cannot be read only decorates the tracking page, while
    the tracking number is what the parcel is for, so it is left out of that product and told to ``left_out``.
    A quantity alone names no product: sent, it would replace "all of the order's products" with a nameless one."""
    items, products = [], []
    for row in rows:
        if fields.names_product(row) and not _discount(item := product(row, fields, left_out)):
            items.append(row)
            products.append(item)
    return items, products
