"""The carrier of a Shopware delivery, from its shipping method's name and tracking URL.

Shops name shipping methods for customers ("Standard", "Express", "Versand"), not after the carrier; the
method's ``trackingUrl`` template (``https://www.dhl.de/...?piececode=%s``) names the carrier by its host.
Order: the merchant's ``carriers`` override, a name Karla knows, the URL's host, then the name as
``tracking_company``, unless it is only generic words, which would mislead Karla's carrier matcher.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from connector.karla.carriers import carrier_fields, normalise_carrier_name

__all__ = ["carrier", "carrier_from_url"]

# Tracking hosts (the domain and its subdomains) -> Karla's carrier enum. Not Evri/myhermes.co.uk: Karla's hrs
# is Hermes Germany. dhl.com is DHL Parcel unless its path names Express (see ``carrier_from_url``).
HOSTS: Mapping[str, str] = {
    "dhl.de": "dhl", "dhl.com": "dhl", "express.dhl": "dhlexp", "deutschepost.de": "depost",
    "dpd.de": "dpd", "dpd.com": "dpd", "dpd.co.uk": "dpduk", "dpd.nl": "dpdn",
    "gls-group.eu": "gls", "gls-group.com": "gls", "gls-pakete.de": "gls", "gls-spain.es": "gls_es",
    "ups.com": "ups", "myhermes.de": "hrs", "hermesworld.com": "hrs", "post.at": "postat", "postnl.nl": "postnl_inter",
    "postnl.com": "postnl_inter", "royalmail.com": "royalmail", "usps.com": "usps", "fedex.com": "fedex",
    "post.ch": "swisspost", "swisspost.ch": "swisspost", "bpost.be": "bpost", "anpost.com": "anpost", "anpost.ie": "anpost",
    "bring.no": "bring", "bring.com": "bring", "posti.fi": "posti", "postnord.se": "postnord", "postnord.dk": "postnord",
    "postnord.com": "postnord", "general-overnight.com": "goexp", "dachser.com": "dachser", "parcel.one": "parcelone",
    "dao.as": "dao", "brt.it": "brt", "asendia.de": "asendia_de",
}

# Words of a shipping method's name that say how, not who: a name made only of them is no carrier.
GENERIC = frozenset(
    "standard express versand standardversand expressversand paketversand shipping delivery lieferung paket "
    "kostenlos kostenloser kostenfrei versandkostenfrei free gratis economy priority premium normal national "
    "international inland ausland overnight next day same mit per via and und".split()
)


def carrier_from_url(template: str | None) -> str | None:
    """Karla's carrier for a tracking URL template whose host is a known carrier's, else None."""
    if not template or not template.strip():
        return None
    url = template.strip()
    parts = urlsplit(url if "//" in url else f"//{url}")
    host = (parts.hostname or "").lower().rstrip(".")
    found = next((ref for domain, ref in HOSTS.items() if host == domain or host.endswith(f".{domain}")), None)
    if found == "dhl" and "express" in parts.path.lower():
        return "dhlexp"
    return found


def is_generic(name: str) -> bool:
    """``Standard``, ``Express``, ``Standardversand``, ``Free shipping``: no carrier in the name."""
    return all(word in GENERIC for word in normalise_carrier_name(name).split())


def carrier(name: str | None, tracking_url: str | None, overrides: Mapping[str, str] | None) -> dict[str, str]:
    """``{"carrier_reference": ...}``, ``{"tracking_company": name}`` or nothing (see the module docstring)."""
    fields = carrier_fields(name, overrides)
    if "carrier_reference" in fields:
        return fields
    by_url = carrier_from_url(tracking_url)
    if by_url:
        return {"carrier_reference": by_url}
    return {} if name is None or is_generic(name) else fields
