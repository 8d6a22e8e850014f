"""Normalisers for the values every source spells differently: money, dates, countries."""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import datetime, timezone, tzinfo

__all__ = ["country_code", "currencies", "money", "parse_datetime"]

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
    "suisse": "CH", "svizzera": "CH", "netherlands": "NL", "nederland": "NL", "niederlande": "NL", "france": "FR",
    "frankreich": "FR", "belgium": "BE", "belgië": "BE", "belgique": "BE", "belgien": "BE", "italy": "IT", "italia": "IT",
    "italien": "IT", "spain": "ES", "españa": "ES", "spanien": "ES", "poland": "PL", "polska": "PL", "polen": "PL",
    "denmark": "DK", "danmark": "DK", "dänemark": "DK", "sweden": "SE", "sverige": "SE", "schweden": "SE",
    "norway": "NO", "norge": "NO", "norwegen": "NO", "finland": "FI", "suomi": "FI", "finnland": "FI",
    "ireland": "IE", "irland": "IE", "united kingdom": "GB", "great britain": "GB", "großbritannien": "GB",
    "vereinigtes königreich": "GB", "united states": "US", "usa": "US", "vereinigte staaten": "US",
    "luxembourg": "LU", "luxemburg": "LU", "czech republic": "CZ", "czechia": "CZ", "tschechien": "CZ",
    "portugal": "PT", "greece": "GR", "griechenland": "GR", "hungary": "HU", "ungarn": "HU", "romania": "RO",
    "rumänien": "RO", "bulgaria": "BG", "bulgarien": "BG", "croatia": "HR", "kroatien": "HR", "slovakia": "SK",
    "slowakei": "SK", "slovenia": "SI", "slowenien": "SI", "estonia": "EE", "estland": "EE", "latvia": "LV",
    "lettland": "LV", "lithuania": "LT", "litauen": "LT", "malta": "MT", "cyprus": "CY", "zypern": "CY",
    "iceland": "IS", "island": "IS", "liechtenstein": "LI",
}
# ISO 3166-1 alpha-3 (as ERPs and customs forms write them) for the EU, the EEA, CH, GB and US
_ALPHA3 = {
    "AUT": "AT", "BEL": "BE", "BGR": "BG", "HRV": "HR", "CYP": "CY", "CZE": "CZ", "DNK": "DK", "EST": "EE", "FIN": "FI",
    "FRA": "FR", "DEU": "DE", "GRC": "GR", "HUN": "HU", "IRL": "IE", "ITA": "IT", "LVA": "LV", "LTU": "LT", "LUX": "LU",
    "MLT": "MT", "NLD": "NL", "POL": "PL", "PRT": "PT", "ROU": "RO", "SVK": "SK", "SVN": "SI", "ESP": "ES", "SWE": "SE",
    "ISL": "IS", "LIE": "LI", "NOR": "NO", "CHE": "CH", "GBR": "GB", "USA": "US",
}
# two-letter codes that are not ISO 3166-1 but common: the EU's own for the UK and Greece
_NOT_ISO = {"UK": "GB", "EL": "GR"}
# ISO 3166-1 alpha-2, the 249 officially assigned codes as tzdata's iso3166.tab lists them ("current as of
# ISO/TC 46 N1108 (2023-04-05)", https://data.iana.org/time-zones/tzdb/iso3166.tab), and XK: Kosovo's
# user-assigned code, which Shopify, Shopware and the EU use; and codes shops and marketplaces write for
# regions with their own customs or VAT: IC and EA (ISO's exceptionally reserved codes for the Canary
# Islands and Ceuta/Melilla) and XI (Northern Ireland, the UK's VAT code). Any other two letters (XX, EU) is
# no country.
_ALPHA2 = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA
CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA
GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS
MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS
RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW
TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK IC EA XI
""".split())


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


# What a sign or code written with an amount can mean: one code where the sign is unambiguous
_SIGNS = {"€": ("EUR",), "£": ("GBP",), "us$": ("USD",), "chf": ("CHF",), "fr": ("CHF",),
          "zł": ("PLN",), "kč": ("CZK",), "ft": ("HUF",), "lei": ("RON",), "r$": ("BRL",), "₺": ("TRY",), "₹": ("INR",),
          "$": ("USD", "CAD", "AUD", "NZD", "MXN", "SGD", "HKD"), "kr": ("SEK", "NOK", "DKK", "ISK"),
          "¥": ("JPY", "CNY")}
_CODES = frozenset(c for codes in _SIGNS.values() for c in codes) | {"BGN", "ISK", "SEK", "NOK", "DKK", "CNY", "ZAR"}


def currencies(text: str) -> tuple[str, ...]:
    """The currency codes a sign or code written with an amount can stand for (``"$20.00"`` → USD, CAD, …;
    ``"20,00 €"`` → EUR); () when it carries none or one not known here (a plain number costs two checks)."""
    if text[-1:].isdigit() and (text[:1].isdigit() or text[:1] in "-+"):
        return ()
    match = _AMOUNT.fullmatch(text.strip().strip("()").strip())
    mark = match and (match["pre"] or match["post"])
    if not mark:
        return ()
    if mark.upper() in _CODES:
        return (mark.upper(),)
    return _SIGNS.get(mark.lower(), ())


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


@functools.lru_cache(maxsize=1024)  # a file names few countries, each on thousands of orders
def country_code(text: str | None) -> str | None:
    """ISO 3166-1 alpha-2 from a code (``uk`` → GB, ``DEU`` → DE) or a common English, German or native name
    (``Deutschland`` → DE); unknown names and two letters that are no assigned code (``XX``, ``EU``) give
    None. Karla wants the alpha-2 code and refuses anything longer, but stores any two letters it is sent."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    if len(value) == 2:
        code = value.upper()
        return _NOT_ISO.get(code) or (code if code in _ALPHA2 else None)
    return _ALPHA3.get(value.upper()) or _COUNTRIES.get(value.lower())
