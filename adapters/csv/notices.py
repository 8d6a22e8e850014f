"""What the ``csv`` source says of a file as a whole, once per file rather than per order: a missing or
doubled column, a repeated header, the one dead letter for a file no row of which can be read, and the error
naming the files this user cannot open. Kept
apart from ``adapters.csv.adapter``, which decides what is read when; the wording here is what a merchant
acts on (naming the file, the column and ``[sources.NAME.columns]``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from adapters.base import Rejected
from adapters.csv.after import advised
from adapters.csv.config import FULFILLMENT_FIELDS, ORDER_FIELDS, CsvConfig
from adapters.csv.letters import no_order_then
from adapters.csv.mapping import Fields

__all__ = ["file_letter", "header_problem", "left_out_once", "unreadable_files", "warn_missing", "warn_repeated"]

# Karla cannot create an order without a zip code: a file without that column is one letter, not one per order.
_REQUIRED = {"orders": ("order_number", "shipping_zip_code"), "fulfillments": ("order_number", "tracking_number")}
_FIELDS = {"orders": ORDER_FIELDS, "fulfillments": FULFILLMENT_FIELDS}
# Configured names warned about when a file lacks them: ``sku`` and ``quantity`` are named for the orders files
# too, and a parcel file without them is normal (a parcel without its product subset).
_OWN_FIELDS = {"orders": ORDER_FIELDS, "fulfillments": tuple(f for f in FULFILLMENT_FIELDS if f not in ORDER_FIELDS)}

_SHOWN = 5  # files whose own reason an unreadable-files error quotes; the others are named only

_LISTED = "; a list of names serves files that head it differently: the first name a file's header has is read"

Log = logging.Logger | logging.LoggerAdapter


def warn_missing(config: CsvConfig, source: str, log: Log, stream: str, name: str, fields: Fields) -> None:
    """Columns whose absence Karla fills in silently: said once per file, not per order."""
    c = config
    if stream == "orders" and fields.index.get("currency") is None and not c.default_currency:
        log.warning("%s has no %s column and default_currency is not set: Karla takes its amounts as EUR",
                    name, c.columns.header("currency"))
    # Karla stamps a missing date with the time it receives the record: on a backfill that is weeks late,
    # and its delivery estimates (and delay messages) start from it.
    date = {"orders": "order_placed_at", "fulfillments": "shipped_at"}.get(stream)
    if date and fields.index.get(date) is None:
        what = "orders" if stream == "orders" else "parcels"
        log.warning("%s has no %s column: Karla dates its %s when it receives them, not when they were %s", name,
                    c.columns.header(date), what, "placed" if stream == "orders" else "shipped")
    if absent := fields.missing(_OWN_FIELDS[stream], configured=True):
        log.warning("%s: column %s, named in [sources.%s.columns], is not in the header (%s): its values are not sent",
                    name, ", ".join(absent), source, ", ".join(fields.names))


def warn_repeated(log: Log, name: str, lines: list[int]) -> None:
    """Rows repeating the header (exports joined with ``cat``), skipped by the reader: said once per file."""
    shown = ", ".join(map(str, lines[:10])) + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")
    what = f"line {shown} repeats" if len(lines) == 1 else f"lines {shown} repeat"
    log.warning("%s: %s the header (files joined into one?): skipped, not read as rows", name, what)


def left_out_once(log: Log, name: str) -> Callable[[str], None]:
    """Says the first parcel product cell of a file left out (a price that cannot be read), as a warning: a
    warehouse export writing every price so would otherwise say it for every parcel."""
    said: list[str] = []

    def warn(message: str) -> None:
        if not said:
            said.append(message)
            log.warning("%s (any other such cell of %s is left out too, without a further warning)", message, name)

    return warn


def header_problem(source: str, stream: str, fields: Fields) -> str | None:
    """Why no row of the file can be mapped (then the whole file is one dead letter), or None."""
    header = fields.names
    absent = fields.absent(_REQUIRED[stream])  # ignoring case, as the columns are mapped
    if absent:
        then = no_order_then("its orders are" if stream == "orders" else "its parcels are")
        return (f"missing required column {', '.join(fields.missing(_REQUIRED[stream]))} (header: {', '.join(header)}): "
                f"map the column in [sources.{source}.columns] ({_mapping(fields, absent)}), "
                f"or fix the header and upload the file again, {then}")
    if twice := fields.duplicated(_FIELDS[stream]):
        return (f"column {', '.join(twice)} appears more than once in the header: which one holds the value is unclear "
                "(fix the header and upload the file again)")
    return None


def _mapping(fields: Fields, absent: list[str]) -> str:
    """The ``[columns]`` lines to write. One table serves both kinds of file: a field already mapped gets the
    file's name listed next to its names, as replacing them would break the files that use them."""
    lines = [f"{f} = " + json.dumps([*fields.wanted[f], "Your column"] if f in fields.configured else "Your column",
                                    ensure_ascii=False) for f in absent]
    return ", ".join(lines) + (_LISTED if fields.configured & set(absent) else "")


def file_letter(config: CsvConfig, stream: str, name: str, sha256: str, problem: str) -> Rejected:
    """One letter for the whole file; its fingerprint goes with it: a changed file still bad is a letter of its
    own (the next export of that name is another file), and `dlq retry` clears it once the file reads. It names
    no order, so it says how it clears (``no_order_then``) unless its problem says so already."""
    if "dlq retry" not in problem:
        problem = f"{problem}; {no_order_then('its orders are' if stream == 'orders' else 'its parcels are')}"
    return advised(config, Rejected(f"{name}:1", problem, raw={"file": name, "sha256": sha256}))


def unreadable_files(problems: dict[str, str], then: str) -> str:
    """Why a read (or ``check``) fails when files cannot be opened (an export written 0600 by another user, a file
    its writer still has locked): each named, with its reason, in name order, so a poll meeting the same files
    says the same words (the daemon logs it once while it lasts; /readyz and `status` show it). ``then``: what
    happens next, from the caller's view."""
    names = sorted(problems)
    said = "; ".join(problems[n] for n in names[:_SHOWN])
    if len(names) > _SHOWN:
        rest = names[_SHOWN:]
        said += f"; and {len(rest)} more: {', '.join(rest[:10])}" + (", ..." if len(rest) > 10 else "")
    what = f"{names[0]} cannot be read" if len(names) == 1 else f"{len(names)} files cannot be read"
    return f"{what}: {said}; {then}"
