"""Logical field → the column holding it in one file, resolved once per file from its header.

A field may be configured with several header names (``order_number = ["Bestellnummer", "Auftragsnummer"]``):
one ``[columns]`` table serves the orders files and the parcel exports, which an ERP often heads
differently. The first name a file's header has is that file's column.
"""

from __future__ import annotations

import operator
import re
from datetime import timezone, tzinfo

from adapters.csv.config import FULFILLMENT_FIELDS, ORDER_FIELDS, Columns
from adapters.csv.reader import Row, header_key

__all__ = ["ORDER_LEVEL", "Fields"]

ORDER_LEVEL = tuple(f for f in ORDER_FIELDS if f not in ("sku", "product_title", "quantity", "price", "image_url"))
# Columns only one kind of file has: they tell a parcel export from an orders file where both globs match it.
# order_number, sku, quantity and the recipient (the email and shipping_* address a carrier's export carries
# for its label) may be in either; an orders file is told by its products, money and order-level ids.
_RECIPIENT = ("email", "shipping_name", "shipping_company", "shipping_address_line_1", "shipping_address_line_2",
              "shipping_zip_code", "shipping_city", "shipping_province_code", "shipping_country_code", "shipping_phone")
PARCEL_ONLY = tuple(f for f in FULFILLMENT_FIELDS if f not in ORDER_FIELDS)
ORDER_ONLY = tuple(f for f in ORDER_FIELDS if f not in FULFILLMENT_FIELDS and f not in _RECIPIENT)
_PRODUCT = ("sku", "product_title", "quantity", "price", "image_url")
_ZERO = re.compile(r"\D*0+(?:[.,]0*)?\D*")  # 0, 0,00, -0.00 €, 0 EUR (anything else is read, and may be a letter)


class Fields:
    """Logical field → header name and column index, resolved once per file; names match whatever their case
    and surrounding blanks (``header_key``)."""

    def __init__(self, columns: Columns, header: list[str], decimal_comma: bool | None = None, tz: tzinfo = timezone.utc) -> None:
        self.names = header
        self.decimal_comma = decimal_comma  # how this file's numbers are read (see ``money``)
        self.tz = tz  # the zone of timestamps written without an offset
        self.configured = set(columns.mapping)  # fields named in [sources.NAME.columns]
        self.wanted = {f: columns.names(f) for f in (*ORDER_FIELDS, *FULFILLMENT_FIELDS)}
        self._keys = [header_key(name) for name in header]
        position = {key: index for index, key in enumerate(self._keys)}
        found = {f: next((n for n in names if header_key(n) in position), None) for f, names in self.wanted.items()}
        self.header = {f: found[f] or names[0] for f, names in self.wanted.items()}  # as this file names it
        self.index = {f: position[header_key(found[f])] if found[f] else None for f in self.wanted}
        named = [i for i in (self.index[f] for f in ("sku", "product_title")) if i is not None]
        amounts = [i for i in (self.index[f] for f in ("quantity", "price")) if i is not None]
        # a line item's naming cells and its amounts, each as one tuple (``is_line``), and the row width they need
        self._named = operator.itemgetter(*named, *named[:1]) if named else None
        self._amounts = operator.itemgetter(*amounts, *amounts[:1]) if amounts else None
        self._line_width = max(named + amounts) + 1 if named or amounts else None
        cells = [self.index[f] for f in _PRODUCT]
        # a product's cells in one C call (``product_cells``): a column the file lacks reads the "" appended
        self._product_pick = operator.itemgetter(*(i if i is not None else -1 for i in cells))
        self._product_width = max((i for i in cells if i is not None), default=-1) + 1
        present = [i for i in (self.index[f] for f in ORDER_LEVEL) if i is not None]
        # the order-level cells of a row in one C call, and the row width they need (``order_differences``)
        self._order_cells = (operator.itemgetter(*present), max(present) + 1) if present else None

    def used(self) -> set[int]:
        """The indexes of the columns some field is read from."""
        return {i for i in self.index.values() if i is not None}

    def duplicated(self, fields: tuple[str, ...]) -> list[str]:
        """Headers of ``fields`` that appear more than once: which column holds the value is unclear."""
        return [h for h in dict.fromkeys(self.header[f] for f in fields) if self._keys.count(header_key(h)) > 1]

    def absent(self, fields: tuple[str, ...], configured: bool = False) -> list[str]:
        """The ``fields`` the file has no column for (``configured``: only those named in [sources.NAME.columns])."""
        return [f for f in fields if self.index[f] is None and (not configured or f in self.configured)]

    def missing(self, fields: tuple[str, ...], configured: bool = False) -> list[str]:
        """Headers of ``fields`` the file lacks, as a merchant looks for them ("Bestellnummer or Auftragsnummer")."""
        return [" or ".join(self.wanted[f]) for f in self.absent(fields, configured)]

    def kinds(self) -> tuple[str, ...]:
        """The streams that read a file both globs match, by its header: a parcel export carrying its recipient's
        address must not be read as orders (it would replace their products), nor an orders file as parcels; a
        file with columns of both kinds (a combined export), or of neither, is read by both, each asking for its
        required columns."""
        parcel = self.present(PARCEL_ONLY)  # one header mapped to a parcel and an order field ("Datum"): a parcel's
        order = [name for name in self.present(ORDER_ONLY) if name not in parcel]
        if bool(parcel) == bool(order):
            return ("fulfillments", "orders")
        return ("fulfillments",) if parcel else ("orders",)

    def present(self, fields: tuple[str, ...]) -> list[str]:
        """Headers of ``fields`` the file has, as it names them."""
        return [self.header[f] for f in fields if self.index[f] is not None]

    def is_line(self, row: Row) -> bool:
        """Whether a row is a line item: it has a sku or title, or else a non-zero quantity or price (an ERP's
        head row ``;;0;0,00`` is no product). A row with a sku costs one C call."""
        if self._line_width is None or len(row.values) < self._line_width:
            return False
        if self._named is not None and any(self._named(row.values)):
            return True
        return self._amounts is not None and any(cell and not _ZERO.fullmatch(cell) for cell in self._amounts(row.values))

    def names_product(self, row: Row) -> bool:
        """Whether a row has a sku or a title: a parcel's product row (an amount alone names nothing shipped)."""
        if self._named is None:
            return False
        if len(row.values) >= self._line_width:  # (``_line_width`` covers the naming cells)
            return any(self._named(row.values))
        return bool(self.get(row, "sku") or self.get(row, "product_title"))

    def product_cells(self, row: Row) -> tuple[str, ...]:
        """A row's sku, product_title, quantity, price and image_url ("" where absent): read for every line."""
        if len(row.values) < self._product_width:
            return tuple(self.get(row, f) for f in _PRODUCT)
        return self._product_pick([*row.values, ""])

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
        for name in ORDER_LEVEL:
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
