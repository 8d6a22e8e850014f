"""Karla's carrier enum and the alias table that maps shop carrier names onto it.

Karla validates ``carrier_reference`` (422 ``carrier_reference_invalid``), so a name is only sent as a
reference when it is a member of the enum; anything else travels as the free-form ``tracking_company``
that Karla's matcher reads. Source of the enum: ``shared/reference/karla-api.md`` (CarrierEnum, Feb 2025).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["CARRIERS", "ALIASES", "CarrierOverrides", "carrier_fields", "normalise_carrier_name"]

CARRIERS: frozenset[str] = frozenset(
    "amz brt depost dhl dhlexp dhl_old dhl2man dpd dpdn dpduk gls gls_es goexp hrs postat rhe royalmail "
    "swisspost ups bpost dao anpost bring posti postnl_inter usps fedex postnord parcelone dachser "
    "asendia_de".split()
)

# Lower-cased, whitespace-collapsed names as shops and warehouses write them -> Karla enum value.
ALIASES: Mapping[str, str] = {
    "dhl": "dhl",
    "dhl paket": "dhl",
    "dhl parcel": "dhl",
    "dhl germany": "dhl",
    "dhl de": "dhl",
    "dhl express": "dhlexp",
    # Not "dhl ecommerce": DHL's parcel networks outside Germany (US, Asia, Benelux...), not DHL Paket (dhl);
    # as tracking_company Karla's matcher decides. A shop that knows better maps it under ``carriers``.
    "deutsche post": "depost",
    "deutsche post (de)": "depost",  # Shopify's carrier list names Deutsche Post per language
    "deutsche post (en)": "depost",
    "deutsche post dhl": "dhl",
    "hermes": "hrs",
    "hermes germany": "hrs",
    "hermes de": "hrs",
    # Not "hermes uk" / "evri": hrs is Hermes Germany, and the enum has no UK Hermes (Evri) code, so they
    # travel as tracking_company.
    "ups": "ups",
    "united parcel service": "ups",
    "dpd": "dpd",
    "dpd germany": "dpd",
    "dpd de": "dpd",
    "dpd uk": "dpduk",
    "dpd nl": "dpdn",
    "dpd netherlands": "dpdn",
    "gls": "gls",
    "gls germany": "gls",
    "gls spain": "gls_es",
    "austrian post": "postat",
    "österreichische post": "postat",
    "post at": "postat",
    "postnl": "postnl_inter",
    "postnl international": "postnl_inter",
    "royal mail": "royalmail",
    "usps": "usps",
    "fedex": "fedex",
    "swiss post": "swisspost",
    "die post": "swisspost",
    "bpost": "bpost",
    "bpost international": "bpost",
    "an post": "anpost",
    "bring": "bring",
    "posti": "posti",
    "postnord": "postnord",
    "postnord se": "postnord",  # Shopify's carrier list: one PostNord per country, and its parcel portal
    "postnord dk": "postnord",
    "postnord no": "postnord",
    "portal postnord": "postnord",
    "go! express": "goexp",
    "go express": "goexp",
    "amazon": "amz",
    "amazon logistics": "amz",
    "brt": "brt",
    "dachser": "dachser",
    "asendia": "asendia_de",
    "parcelone": "parcelone",
    "dao": "dao",
}

_SPACES = re.compile(r"[\s_\-]+")


@functools.lru_cache(maxsize=4096)  # exports repeat a handful of carrier spellings on every row
def normalise_carrier_name(name: str) -> str:
    """Lower-case and collapse separators so ``DHL-Express`` and ``dhl express`` match one alias."""
    return _SPACES.sub(" ", name.strip().lower())


@functools.lru_cache(maxsize=4096)
def _builtin(name: str) -> str | None:
    """Karla's own code as written (``gls_es``: normalising would turn its ``_`` into a space), else an alias."""
    exact = name.strip().lower()
    if exact in CARRIERS:
        return exact
    key = normalise_carrier_name(name)
    return ALIASES.get(key) or (key if key in CARRIERS else None)


def carrier_fields(name: str | None, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return ``{"carrier_reference": ...}`` for a known carrier, else ``{"tracking_company": name}``.

    ``overrides`` (from config) win over the built-in table; their values must be enum members.
    """
    if not name or not name.strip():
        return {}
    ref = _override(normalise_carrier_name(name), overrides) if overrides else None
    ref = ref or _builtin(name)
    if ref in CARRIERS:
        return {"carrier_reference": ref}
    return {"tracking_company": name.strip()}


def _override(key: str, overrides: Mapping[str, str]) -> str | None:
    return next((v for k, v in overrides.items() if normalise_carrier_name(k) == key), None)


def _known(overrides: dict[str, str]) -> dict[str, str]:
    unknown = sorted(v for v in overrides.values() if v not in CARRIERS)
    if unknown:
        raise ValueError(f"not Karla carrier references: {', '.join(unknown)}; known: {', '.join(sorted(CARRIERS))}")
    return overrides


# A source's ``[sources.NAME.carriers]`` table: its carrier names -> Karla's enum, checked at start-up.
CarrierOverrides = Annotated[dict[str, str], AfterValidator(_known)]
