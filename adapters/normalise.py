"""Normalisers for the values every source spells differently: money, dates, countries."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

__all__ = ["country_code", "money", "parse_datetime"]

_MONEY_JUNK = re.compile(r"[^\d,.\-]")
_PLAIN = re.compile(r"-?\d+(\.\d{1,2})?")

_COUNTRIES = {
    "germany": "DE", "deutschland": "DE", "austria": "AT", "österreich": "AT", "switzerland": "CH", "schweiz": "CH",
    "netherlands": "NL", "nederland": "NL", "france": "FR", "belgium": "BE", "belgië": "BE", "italy": "IT", "italia": "IT",
    "spain": "ES", "españa": "ES", "poland": "PL", "polska": "PL", "denmark": "DK", "sweden": "SE", "norway": "NO",
    "finland": "FI", "ireland": "IE", "united kingdom": "GB", "great britain": "GB", "uk": "GB", "united states": "US",
    "usa": "US", "luxembourg": "LU", "czech republic": "CZ", "czechia": "CZ", "portugal": "PT",
}


def money(text: str | None, *, decimal_comma: bool | None = None) -> float | None:
    """``"1.234,50 €"`` → 1234.5, ``"$1,234.50"`` → 1234.5, ``"12,5"`` → 12.5; empty → None.

    ``decimal_comma`` forces the reading of a lone separator; by default the last separator is decimal
    when it is followed by one or two digits.
    """
    if text is None or not text.strip():
        return None
    if _PLAIN.fullmatch(text):  # the common case: 12, 12.5, -3.99
        return float(text)
    cleaned = _MONEY_JUNK.sub("", text.strip())
    last = max(cleaned.rfind(","), cleaned.rfind("."))
    if last >= 0:
        tail = cleaned[last + 1 :]
        if decimal_comma is None:
            is_decimal = len(tail) in (1, 2)
        else:
            is_decimal = (cleaned[last] == ",") == decimal_comma
        if is_decimal:
            cleaned = cleaned[:last].replace(",", "").replace(".", "") + "." + tail
        else:
            cleaned = cleaned.replace(",", "").replace(".", "")
    try:
        return float(Decimal(cleaned))
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None


def parse_datetime(text: str | None) -> datetime | None:
    """ISO 8601 (date, date-time, with or without offset; naive means UTC), ``DD.MM.YYYY[ HH:MM[:SS]]``."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except ValueError:
        pass
    for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
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
