"""The dead letters a CSV row becomes when it cannot be sent: at its file:line, naming its column, and saying
what the merchant does next. Kept apart from ``adapters.csv.mapping``, which turns rows into records: the
wording of a refusal is a piece of its own, shared by orders and parcels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import ValidationError

from adapters.base import Rejected
from adapters.csv.reader import Row, line_keys
from connector.karla.models import error_message

if TYPE_CHECKING:
    from adapters.csv.mapping import Fields

__all__ = ["invalid", "no_order_then", "rejected", "row_problem", "row_problems"]

_PRODUCT_SOURCE = {"title": "product_title", "images": "image_url"}  # Karla's name of a product value -> its field
_NAMED = 20  # orders a letter names of the lines an unbalanced quote joined; the rest are counted


def no_order_then(what: str) -> str:
    """What a letter naming no order (a row without its order number, a header without a required column)
    says after the fix: no clean read can match it, and the next export of that name is no proof of the fix."""
    return ("then run `karla-connector dlq retry ID`: it reads the file again, and no other read clears this letter, "
            f"which names no order; or `karla-connector dlq drop ID` once {what} in Karla")


def rejected(file: str, key: str, bad: Row, reason: str, fields: Fields, what: str | None = None,
             then: str = "") -> list[Rejected]:
    """``what`` was not sent (default: the order, or the row when it names none); ``then``: what else to do."""
    what = what or (f"order {key}" if key else "this row was")
    return [Rejected(f"{file}:{bad.line}", f"{reason} ({what} not sent: fix the row and upload the file again{then})",
                     key or None, fields.raw(bad))]


def invalid(file: str, key: str, exc: ValidationError, rows: list[Row], items: list[Row], fields: Fields,
            sources: Mapping[str, str], label: str, what: str | None = None) -> list[Rejected]:
    """A letter per row that holds a value Karla's model refused, at that row's line and naming its column:
    the order's first row would send the merchant to a line with nothing wrong on it."""
    found: dict[int, tuple[Row, list[str]]] = {}
    for error in exc.errors():
        path = ".".join(str(p) for p in error["loc"])
        row, field = _origin(error["loc"], path, rows, items, fields, sources)
        message = error_message(error)  # as ``explain`` words it
        told = f"{fields.header[field]} {fields.get(row, field)!r} ({path or 'record'})" if field else (path or "record")
        found.setdefault(row.line, (row, []))[1].append(f"{told}: {message}")
    return [r for row, parts in found.values() for r in rejected(file, key, row, f"{label}: {'; '.join(parts)}", fields, what)]


def _origin(loc: tuple[int | str, ...], path: str, rows: list[Row], items: list[Row], fields: Fields,
            sources: Mapping[str, str]) -> tuple[Row, str | None]:
    """The row and field a refused value came from: ``products.N`` is the N-th product row (``items``); any
    other value the row it was merged from (the first non-empty one), or the first row if none has it."""
    if len(loc) > 1 and loc[0] == "products" and isinstance(loc[1], int) and loc[1] < len(items):
        name = str(loc[2]) if len(loc) > 2 else ""
        field = _PRODUCT_SOURCE.get(name, name)
        return items[loc[1]], field if fields.index.get(field) is not None else None
    field = sources.get(path, path)
    if fields.index.get(field) is None:
        return rows[0], None
    return next((row for row in rows if fields.get(row, field)), rows[0]), field


def row_problem(row: Row, fields: Fields, required: tuple[str, ...]) -> str | None:
    """Why a row cannot be used at all (broken, or a required value missing), or None."""
    missing = [fields.header[f] for f in required if not fields.get(row, f)]
    return row.problem or (f"required column {', '.join(missing)} is empty" if missing else None)


def row_problems(file: str, key: str, rows: list[Row], fields: Fields, required: tuple[str, ...], what: str | None = None) -> list[Rejected]:
    found = []
    for row in rows:
        if reason := row_problem(row, fields, required):
            said = _swallowed(key, row, fields, what) or what
            found += rejected(file, key, row, reason, fields, said, _unmatched(key, row, fields, required))
    return found


def _swallowed(key: str, row: Row, fields: Fields, what: str | None) -> str | None:
    """What a row of joined lines holds back besides itself (``what``: a parcel export's row), or None: the
    orders of the rows an unbalanced quote swallowed have no letter, log line or record of their own, and a
    merchant who fixes the one order named would not look for them."""
    others = [k for k in line_keys(row, fields.index["order_number"], fields.names) if k != key]
    if not others:
        return None
    named = [key, *others] if key else others
    shown = ", ".join(named[:_NAMED]) + (f" and {len(named) - _NAMED} more" if len(named) > _NAMED else "")
    orders = f"order{'s' if len(named) > 1 else ''} {shown}"
    if not key:
        return f"this row and {orders} were"
    return f"these rows of {orders} were" if what else orders


def _unmatched(key: str, row: Row, fields: Fields, required: tuple[str, ...]) -> str:
    """What else a row no clean read can match needs: one without its order number (``no_order_then``), and
    a fulfilment row without its tracking number (a clean read clears a parcel's letter by the tracking
    number its row holds, and this one holds none, so the letter stays until it is dropped)."""
    if not key:
        return ", " + no_order_then("the parcel is" if "tracking_number" in required else "the order is")
    if "tracking_number" not in required or row.problem or fields.get(row, "tracking_number"):
        return ""
    return ("; this letter names no parcel, so no clean read clears it: drop it with `karla-connector dlq drop ID` "
            "once the parcel is in Karla")
