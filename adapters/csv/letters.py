"""The dead letters a CSV row becomes when it cannot be sent: at its file:line, naming its column, and saying
what the merchant does next. Kept apart from ``adapters.csv.mapping``, which turns rows into records: the
wording of a refusal is a piece of its own, shared by orders and parcels."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from pydantic import ValidationError

from adapters.base import Rejected
from adapters.csv.reader import Row, line_keys
from connector.karla.models import error_message

if TYPE_CHECKING:
    from adapters.csv.mapping import Fields

__all__ = ["Broken", "invalid", "no_order_then", "rejected", "row_problem", "row_problems"]

_PRODUCT_SOURCE = {"title": "product_title", "images": "image_url"}  # Karla's name of a product value -> its field
_DIGITS, _LETTERS = re.compile(r"\d+"), re.compile(r"[^\W\d_]+")
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


class Broken:
    """The orders a file's broken rows name, found as its rows stream past (``watch``): every such order is
    held back whole, as the row's letter says, and each gets a letter of its own, so that `dlq retry` (which
    asks for the letters' orders) sends all of them once the file is fixed, and a later export clearing one
    order's letter leaves the others'. An order is named by a line an unbalanced quote joined (``line_keys``)
    and by the row's order number column; of a row of the wrong width, whose columns may have shifted (a sku
    or a price in the order number's place), only as ``_decide`` says from the clean rows next to it. A
    bucketed file is read whole before any order is mapped; a grouped one streams, and the order before a
    broken row is told at once, the one after it with that row: each before its group is mapped."""

    def __init__(self, fields: Fields) -> None:
        self.held: set[str] = set()  # orders not sent: a broken row's letter names them
        self._fields, self._width = fields, len(fields.names)
        self._index = fields.index["order_number"]
        self._named: dict[int, list[str]] = {}  # line of a broken row -> the orders it names
        self._near: dict[int, list[str]] = {}  # line of a shifted row naming no order -> its neighbours' orders
        self._own: set[int] = set()  # lines of broken rows whose first order named is their own

    def watch(self, rows: Iterator[Row]) -> Iterator[Row]:
        """The rows as they are, noting the broken ones: one test per clean row."""
        last: Row | None = None
        waiting: list[tuple[Row, list[str]]] = []  # shifted rows waiting for the next clean row's order number
        for row in rows:
            if row.problem is None:
                last = row
                if waiting:
                    self._after(waiting, self._key(row))
                    waiting = []
            elif (near := self._broken(row, self._key(last) if last else "")) is not None:
                waiting.append((row, near))
            yield row
        if waiting:
            self._after(waiting, "")

    def _key(self, row: Row) -> str:
        return self._fields.get(row, "order_number") if self._index is not None else ""

    def _broken(self, row: Row, before: str) -> list[str] | None:
        """Notes what a broken row names; for a shifted row not settled by the order before it, its neighbours
        so far (it waits for the order after it)."""
        named, key = line_keys(row, self._index, self._fields.names), self._key(row)
        if len(row.values) == self._width:
            self._note(row, [key, *named] if key else named, [], bool(key))
            return None
        near = [before] if before else []
        mine = _decide(row, key, near) if near else []
        self._note(row, [*mine, *named], near, bool(mine))
        return None if mine else near

    def _after(self, waiting: list[tuple[Row, list[str]]], after: str) -> None:
        for row, near in waiting:
            near = [*near, after] if after and after not in near else near
            mine = _decide(row, self._key(row), near)
            self._note(row, [*mine, *self._named[row.line]], near, bool(mine))

    def _note(self, row: Row, named: list[str], near: list[str], own: bool) -> None:
        named = list(dict.fromkeys(named))
        if own:
            self._own.add(row.line)
        self.held.update(named)
        self._named[row.line] = named
        if named:
            self._near.pop(row.line, None)
        else:
            self._near[row.line] = near

    def orders(self, row: Row, key: str, confirmed: bool) -> tuple[list[str], bool]:
        """The orders a broken row of order ``key``'s group names, and whether the first is its own;
        ``confirmed``: a clean row of the file has ``key`` as its order number, so the row's own value is an
        order even where its columns shifted."""
        named = self._named.get(row.line, [])
        if row.line in self._own:
            return named, True
        if row.line in self._near and (mine := _decide(row, key, self._near[row.line])):  # a grouped file: the
            return [*mine, *named], True  # order after the row may not be read yet, the row's own is mapped now
        return ([key, *(k for k in named if k != key)], True) if confirmed and key else (named, False)

    def near(self, row: Row) -> list[str]:
        """The orders of the clean rows next to a shifted row that names none: they may lack it."""
        return [] if self._named.get(row.line) else self._near.get(row.line, [])


def _decide(row: Row, key: str, near: list[str]) -> list[str]:
    """The orders a row of the wrong width names, by the order numbers of the clean rows next to it (``near``):
    its own value where a neighbour has it; else a neighbour's found in one of its cells (its order number moved
    to another column); else its own value where it is written like theirs (``4711`` among ``4710``, ``4712``),
    or where it has no clean neighbour, or where it can be an order number at all (``_plausible``: not ``B``,
    ``EUR`` or ``8,778.00``); else none."""
    if key and key in near:
        return [key]
    if found := [n for n in near if n in row.values]:
        return found
    return [key] if key and (all(_shape(key) == _shape(n) for n in near) or _plausible(key)) else []


_NOT_A_NUMBER = re.compile(r"\s|^\D*$|^-?[\d.,' ]+[.,]\d{1,2}$|^\d{4}-\d\d-\d\d")  # a word, a blank, money, a date


def _plausible(key: str) -> bool:
    """Whether a value can be an order number although the rows around it are written otherwise (a shop's
    ``10023`` among a marketplace's ``302-…`` and ``EB-…``): it holds a digit and is no word, money or date
    (``B``, ``EUR``, ``Jacke 🧥``, ``8,778.00``, ``2026-10-22T08:43:30Z``, a shifted column's values)."""
    return not _NOT_A_NUMBER.search(key)


def _shape(text: str) -> str:
    """How a value is written: runs of digits and of letters each as one mark (``SO-2026-17`` → ``a-9-9``)."""
    return _DIGITS.sub("9", _LETTERS.sub("a", text))


def row_problems(file: str, key: str, rows: list[Row], fields: Fields, required: tuple[str, ...],
                 parcels: bool = False, broken: Broken | None = None) -> list[Rejected]:
    """A letter per bad row, and one per further order a broken row names (``Broken``), at the row's line;
    ``parcels``: rows of a parcel export, whose letters say "this row of order N"."""
    found = []
    confirmed = broken is not None and any(row.problem is None for row in rows)
    for row in rows:
        if not (reason := row_problem(row, fields, required)):
            continue
        if not row.problem:
            named, own = [key] if key else [], bool(key)
        elif broken is None:
            named = [k for k in dict.fromkeys([key, *line_keys(row, fields.index["order_number"], fields.names)]) if k]
            own = bool(key)
        else:
            named, own = broken.orders(row, key, confirmed)
        if row.problem and key and key not in named:
            reason += _not_its_order(fields, key, broken.near(row) if broken else [])
        first, *others = named if own else ["", *named]
        then = _unmatched(first, row, fields, required)
        found += rejected(file, first, row, reason, fields, _said(named, parcels, own), then)
        found += [replace(found[-1], key=other, raw=None) for other in others]  # the row's text once
    return found


def _not_its_order(fields: Fields, key: str, near: list[str]) -> str:
    """A shifted row's order number column holds another column's value (a sku, a price): no order of it."""
    around = f"; the orders around it ({', '.join(near)}) may be sent without it" if near else ""
    return (f"; its {fields.header['order_number']} column holds {key!r}, not an order number like those of the rows "
            f"around it: a field missing or added shifts the columns after it{around}")


def _said(named: list[str], parcels: bool, own: bool) -> str:
    """What the letters of a bad row say was not sent: the orders it names (the first 20, then a count)."""
    if not named:
        return "this row was"
    shown = ", ".join(named[:_NAMED]) + (f" and {len(named) - _NAMED} more" if len(named) > _NAMED else "")
    orders = f"order{'s' if len(named) > 1 else ''} {shown}"
    if not own:
        return f"this row and {orders} were"
    if parcels:
        return f"these rows of {orders} were" if len(named) > 1 else f"this row of {orders} was"
    return orders


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
