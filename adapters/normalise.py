"""Normalisers for the values every source spells differently: money, dates, countries."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone, tzinfo

__all__ = ["country_code", "money", "parse_datetime"]

_PLAIN = re.compile(r"-?\d+(\.\d{1,2})?")
# [sign] [currency] [sign] number [currency] [trailing minus, as SAP writes it]; parentheses are taken off first.
# Inside the number only digits, "," "." and grouping marks (whitespace such as NBSP, apostrophes).
_NOT_NUMBER = r"[^\d\s.,'\u2019()+\-\u2212]+"
_AMOUNT = re.compile(
    rf"(?P<sign>[-+\u2212]?)\s*(?P<pre>{_NOT_NUMBER})?\s*(?P<sign2>[-+\u2212]?)\s*"
    r"(?P<number>(?:\d|[.,](?=\d))(?:[\d.,'\u2019\s]*\d)?)"
    rf"\s*(?P<post>{_NOT_NUMBER})?\s*(?P<trail>-?)"
)
_GROUP_MARKS = re.compile(r"[\s'\u2019]")
_LETTER_INSIDE = re.compile(r"\d[^\W\d_]+\d")

_COUNTRIES = {
    "germany": "DE", "deutschland": "DE", "austria": "AT", "österreich": "AT", "switzerland": "CH", "schweiz": "CH",
    "netherlands": "NL", "nederland": "NL", "france": "FR", "belgium": "BE", "belgië": "BE", "italy": "IT", "italia": "IT",
    "spain": "ES", "españa": "ES", "poland": "PL", "polska": "PL", "denmark": "DK", "sweden": "SE", "norway": "NO",
    "finland": "FI", "ireland": "IE", "united kingdom": "GB", "great britain": "GB", "uk": "GB", "united states": "US",
    "usa": "US", "luxembourg": "LU", "czech republic": "CZ", "czechia": "CZ", "portugal": "PT",
}


def money(text: str | None, *, decimal_comma: bool | None = None) -> float | None:
    """``"1.234,50 €"`` → 1234.5, ``"$1,234.50"`` → 1234.5, ``"12,5"`` → 12.5, ``"(5.00)"`` → -5; empty → None.

    With both ``,`` and ``.`` the last is the decimal mark; a repeated one, spaces and apostrophes group
    thousands (groups of three are checked). A lone separator before 1-2 or 4+ digits, or after a ``0``,
    is decimal. ``1,234`` / ``19.990`` could be either, so they are refused (``ValueError``) unless
    ``decimal_comma`` says which mark is decimal: guessing would be off by a factor of 1000.
    """
    if text is None or not text.strip():
        return None
    if _PLAIN.fullmatch(text):  # the common case: 12, 12.5, -3.99
        return float(text)
    value = text.strip()
    negative = value.startswith("(") and value.endswith(")")  # accounting style: (5.00) is -5
    if negative:
        value = value[1:-1].strip()
    match = _AMOUNT.fullmatch(value)
    if match is None:
        raise ValueError(f"{text!r} is not a number" + (": letters inside it" if _LETTER_INSIDE.search(value) else ""))
    for currency in (match["pre"], match["post"]):
        if currency and not _is_currency(currency):
            raise ValueError(f"{text!r} is not a number: {currency!r} is not a currency")
    signs = [s for s in (match["sign"], match["sign2"], match["trail"]) if s]
    if len(signs) + negative > 1:
        raise ValueError(f"{text!r} is not a number: more than one sign")
    if signs:
        negative = signs[0] != "+"
    amount = float(_digits(text, match["number"], decimal_comma))
    return -amount if negative and amount else amount


def _is_currency(token: str) -> bool:
    """A code (EUR, kr, zł) or something holding a currency sign (€, US$, R$); not a stray letter."""
    if token.isalpha():
        return 2 <= len(token) <= 3
    return all(c.isalpha() or unicodedata.category(c) == "Sc" for c in token) and len(token) <= 4


def _digits(text: str, number: str, decimal_comma: bool | None) -> str:
    """``number`` (digits and separators only) as ``float()`` reads it, e.g. ``"1.234,5"`` → ``"1234.5"``."""
    commas, points = number.count(","), number.count(".")
    if commas and points:
        decimal = "," if number.rfind(",") > number.rfind(".") else "."
        whole, _, fraction = number.rpartition(decimal)
        if decimal in whole:
            raise ValueError(f"{text!r} is not a number: {decimal!r} appears more than once")
        return _whole(text, whole, "." if decimal == "," else ",") + "." + _fraction(text, fraction)
    if commas + points == 0:
        return _whole(text, number, None)
    mark = "," if commas else "."
    if commas + points > 1:  # 1.234.567: a repeated mark groups thousands
        return _whole(text, number, mark)
    whole, _, fraction = number.partition(mark)
    grouped = _GROUP_MARKS.search(whole) is not None  # 1 234,567: spaces group, so the mark is decimal
    if len(fraction) != 3 or grouped or not whole.strip("0"):  # 12,5 / 12.5000 / 0.125
        decimal = True
    elif decimal_comma is None:
        raise ValueError(f"{text!r} is not a number: ambiguous, {whole}{fraction} or {whole}.{fraction}? "
                         "Set decimal_comma (true: the comma is the decimal mark, false: the point is)")
    else:
        decimal = (mark == ",") == decimal_comma
    if decimal:
        return _whole(text, whole, None) + "." + _fraction(text, fraction)
    return _whole(text, number, mark)


def _whole(text: str, whole: str, thousands: str | None) -> str:
    """The integer part without its thousands separators, which must each be followed by three digits."""
    groups = _GROUP_MARKS.split(whole.replace(thousands, " ") if thousands else whole)
    if len(groups) > 1 and not (1 <= len(groups[0]) <= 3 and groups[0][0] != "0" and all(len(g) == 3 for g in groups[1:])):
        raise ValueError(f"{text!r} is not a number: thousands separators must be followed by three digits")
    return "".join(groups) or "0"


def _fraction(text: str, fraction: str) -> str:
    if not fraction.isdecimal():
        raise ValueError(f"{text!r} is not a number: nothing but digits may follow the decimal mark")
    return fraction


def parse_datetime(text: str | None, tz: tzinfo = timezone.utc) -> datetime | None:
    """ISO 8601 (date, date-time, with or without offset), ``DD.MM.YYYY[ HH:MM[:SS]]``.

    A time without an offset is taken as wall-clock time in ``tz`` (UTC unless the source says otherwise:
    an ERP in Berlin writes local time, and reading it as UTC would be one or two hours off).
    """
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    except ValueError:
        pass
    for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=tz)
        except ValueError:
            pass
    raise ValueError(f"not a date: {text!r}")


def country_code(text: str | None) -> str | None:
    """ISO 3166-1 alpha-2 from a code or a common English/native name; unknown names give None."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    if len(value) == 2 and value.isalpha():
        return value.upper()
    return _COUNTRIES.get(value.lower())
