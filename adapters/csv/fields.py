"""Logical field → the column holding it in one file, resolved once per file from its header.

A field may be configured with several header names (``order_number = ["Bestellnummer", "Auftragsnummer"]``):
one ``[columns]`` table serves the orders files and the parcel exports, which an ERP often heads
differently. The first name a file's header has is that file's column.
"""

from __future__ import annotations

import operator
from datetime import timezone, tzinfo

from adapters.csv.config import FULFILLMENT_FIELDS, ORDER_FIELDS, Columns
from adapters.csv.reader import Row, header_key

__all__ = ["ORDER_LEVEL", "Fields"]

ORDER_LEVEL = tuple(f for f in ORDER_FIELDS if f not in ("sku", "product_title", "quantity", "price", "image_url"))


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
        line = [i for i in (self.index[f] for f in ("sku", "product_title", "quantity", "price")) if i is not None]
        # a line item's cells as one tuple (``is_line``), and the row width they need
        self._line_cells = (operator.itemgetter(*line, *line[:1]), max(line) + 1) if line else None
        present = [i for i in (self.index[f] for f in ORDER_LEVEL) if i is not None]
        # the order-level cells of a row in one C call, and the row width they need (``order_differences``)
        self._order_cells = (operator.itemgetter(*present), max(present) + 1) if present else None

    def duplicated(self, fields: tuple[str, ...]) -> list[str]:
        """Headers of ``fields`` that appear more than once: which column holds the value is unclear."""
        return [h for h in dict.fromkeys(self.header[f] for f in fields) if self._keys.count(header_key(h)) > 1]

    def absent(self, fields: tuple[str, ...], configured: bool = False) -> list[str]:
        """The ``fields`` the file has no column for (``configured``: only those named in [sources.NAME.columns])."""
        return [f for f in fields if self.index[f] is None and (not configured or f in self.configured)]

    def missing(self, fields: tuple[str, ...], configured: bool = False) -> list[str]:
        """Headers of ``fields`` the file lacks, as a merchant looks for them ("Bestellnummer or Auftragsnummer")."""
        return [" or ".join(self.wanted[f]) for f in self.absent(fields, configured)]

    def is_line(self, row: Row) -> bool:
        """Whether a row holds a line item's value (sku, title, quantity or price): one C call per row."""
        if self._line_cells is None or len(row.values) < self._line_cells[1]:
            return False
        return any(self._line_cells[0](row.values))

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
