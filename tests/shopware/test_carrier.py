"""The carrier of a parcel: shipping methods are named for customers, their tracking URL names the carrier."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from adapters.base import Record
from adapters.shopware.carrier import HOSTS, carrier_from_url
from adapters.shopware.config import ShopwareConfig
from adapters.shopware.mapping import map_order
from connector.karla.carriers import CARRIERS
from connector.karla.models import dump
from tests.shopware import factory as f
from tests.shopware.conftest import CLIENT_ID, SECRET

SETTINGS = {"type": "shopware", "base_url": "https://shop.example.com", "client_id": CLIENT_ID, "client_secret": SECRET}
DPD_URL = "https://tracking.dpd.de/status/de_DE/parcel/%s"


def parcel(method: str, url: str | None, **settings: object) -> dict[str, object]:
    shirt = f.line_item("Shirt", "SKU-1", 1, 50.0)
    shipped = f.delivery([(shirt, 1)], codes=["00340434161094042557"], status="shipped",
                         method=f.shipping_method(method, url=url), ship_to=f.address())
    record = map_order(f.order("1", items=[shirt], deliveries=[shipped]), ShopwareConfig.model_validate(SETTINGS | settings),
                       datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert isinstance(record, Record)
    found = dump(record.trackings[0])
    return {k: found[k] for k in ("carrier_reference", "tracking_company") if k in found}


@pytest.mark.parametrize(("method", "url", "expected"), [
    ("Standard", f.DHL_URL, {"carrier_reference": "dhl"}),  # was: tracking_company "Standard"
    ("Express", DPD_URL, {"carrier_reference": "dpd"}),
    ("Versand mit DHL", f.DHL_URL, {"carrier_reference": "dhl"}),
    ("Standardversand", None, {}),  # was: tracking_company "Standardversand"
    ("Free shipping", "", {}),
    ("DHL Express", f.DHL_URL, {"carrier_reference": "dhlexp"}),  # a carrier's name wins over the URL
    ("Kurier Müller", None, {"tracking_company": "Kurier Müller"}),
    ("Kurier Müller", "https://kurier-mueller.example/track?id=%s", {"tracking_company": "Kurier Müller"}),
])
def test_the_carrier_comes_from_the_name_else_the_tracking_url(method: str, url: str | None, expected: dict) -> None:
    assert parcel(method, url) == expected


def test_the_merchants_carrier_table_comes_first() -> None:
    assert parcel("Standard", f.DHL_URL, carriers={"Standard": "hrs"}) == {"carrier_reference": "hrs"}


@pytest.mark.parametrize(("url", "expected"), [
    ("https://www.ups.com/track?tracknum=%s", "ups"),
    ("https://www.myhermes.de/empfangen/sendungsverfolgung/sendungsinformation/#%s", "hrs"),
    ("https://gls-group.eu/DE/de/paketverfolgung?match=%s", "gls"),
    ("nolp.dhl.de/nextt-online-public/set_identcodes.do?idc=%s", "dhl"),  # no scheme
    ("https://www.dhl.com/de-en/home/tracking/tracking-express.html?tracking-id=%s", "dhlexp"),
    ("https://www.evri.com/track/parcel/%s", None),  # Hermes UK is no Karla carrier
    ("https://dhl.de.phish.example/%s", None),
    ("%s", None),
])
def test_tracking_hosts_name_karla_carriers(url: str, expected: str | None) -> None:
    found = carrier_from_url(url)
    assert found == expected and (found is None or found in CARRIERS)


def test_every_tracking_host_names_a_karla_carrier() -> None:
    """Karla refuses an unknown carrier_reference (422): the table may only hold enum members."""
    assert set(HOSTS.values()) <= CARRIERS
