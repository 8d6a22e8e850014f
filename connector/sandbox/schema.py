"""The request schema of Upsert Order and Bulk Fulfillment as Karla documents it (``shared/karla-docs/003_*``
OrderFulfillmentDTO, OrderPlacementDTO, OrderTrackingDTO, ProductDTO, AddressWithZipCodeDTO; the discount and
image shapes from ``shared/reference/karla-api.md`` §1.2), checked the way Karla's FastAPI does.

Written apart from ``connector.karla.models`` on purpose: the sandbox must refuse what Karla refuses even
when the connector's own models let it through, or a regression there would pass every test. Unknown keys
are ignored (FastAPI's default); only what the docs state is enforced, with two checks of the sandbox's own
that ``connector.sandbox.validate`` documents (blank text, zip code shapes). Zip codes and carrier references
are checked apart, in ``validate``, to answer Karla's own keys (``zip_code_invalid``, ``carrier_reference_invalid``).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

__all__ = ["FULFILLMENT", "IdType", "zip_error"]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")  # FastAPI's default: unknown keys are not refused


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]  # required text: blank is missing


class IdType(str, Enum):
    uuid = "uuid"
    external_id = "external_id"
    order_name = "order_name"
    order_number = "order_number"


class ProductType(str, Enum):
    product = "product"
    bundle = "bundle"


class Image(_In):
    src: Text
    alt: str | None = None


class TaxLine(_In):
    currency: str | None = None
    price: float | None = None
    rate: float | None = None
    title: str | None = None


class BaseProduct(_In):
    title: str | None = None
    quantity: int | None = None
    price: float | None = None
    size: str | None = None
    images: list[Image] | None = None
    sku: str | None = None
    weight: float | None = None
    tax_lines: list[TaxLine] | None = None
    product_id: str | None = None  # sent by Karla's own Shopware plugin, absent from the Feb-2025 spec
    variant_id: str | None = None


class Product(BaseProduct):
    bundled_products: list[BaseProduct] | None = None
    shipment_id: str | None = None
    type: ProductType = ProductType.product


class Discount(_In):
    code: Text
    amount: str | float | None = None  # documented as text ("10.0"); Karla's Shopware plugin sends a number
    type: str | None = None


class Address(_In):
    zip_code: str | None = None  # required: checked with its shape (``zip_error``), to answer zip_code_invalid
    country_code: Annotated[str, StringConstraints(min_length=2, max_length=2)] | None = None  # "two letter"
    name: str | None = None
    company: str | None = None
    address_line_1: str | None = None
    address_line_2: str | None = None
    street: str | None = None
    city: str | None = None
    country: str | None = None
    province: str | None = None
    province_code: str | None = None
    phone: str | None = None


class DeliveryDate(_In):
    start: datetime | None = None
    end: datetime | None = None
    updated_at: datetime | None = None
    source: str | None = None


class Order(_In):
    order_number: Text
    order_name: str | None = None
    order_placed_at: datetime | None = None
    total_order_price: float | None = None
    shipping_price: float | None = None
    sub_total_price: float | None = None
    discount_price: float = 0
    products: list[Product] | None = None
    discounts: list[Discount] | None = None
    email_id: str | None = None
    address: Address
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None  # "ISO 4217 currency code"
    segments: list[str] | None = None
    weight: float | None = None
    external_customer_id: str | None = None
    order_status_url: str | None = None
    external_id: str | None = None
    preferred_delivery_date: DeliveryDate | None = None
    user_agent: str | list[str] | None = None  # "string or null", yet the docs' own example sends a list
    order_analytics: dict[str, Any] | None = None
    expected_number_of_shipments: int = Field(default=1, le=100)


class Tracking(_In):
    tracking_number: Text
    tracking_url: str | None = None
    tracking_placed_at: datetime | None = None
    carrier_reference: str | None = None  # checked against Karla's carriers apart, to answer carrier_reference_invalid
    tracking_company: str | None = None  # karla-docs 002: "Unmapped carrier, significantly helps with AI matching"
    external_shipment_id: str | None = None
    products: list[Product] | None = None


class Fulfillment(_In):
    id: Text
    id_type: IdType = IdType.order_number
    order: Order | None = None
    trackings: list[Tracking]


FULFILLMENT = TypeAdapter(Fulfillment)  # arrays left out are None, not []: a default list is copied per item


# Postal code shapes for countries merchants ship to most: the sandbox's own rule, stricter than Karla's docs,
# which name only ``zip_code_invalid`` ("Invalid zip code provided"). Others accept any non-blank value.
_ZIP = {
    "DE": r"(D-?)?\d{5}", "AT": r"(A-?)?\d{4}", "CH": r"(CH-?)?\d{4}", "FR": r"\d{5}", "IT": r"\d{5}", "ES": r"\d{5}",
    "NL": r"\d{4} ?[A-Za-z]{2}", "BE": r"\d{4}", "DK": r"\d{4}", "PL": r"\d{2}-?\d{3}", "US": r"\d{5}(-?\d{4})?",
}


def zip_error(zip_code: str | None, country_code: str | None) -> str | None:
    """Why the sandbox refuses ``zip_code`` for ``country_code`` (None: it takes it)."""
    if zip_code is None or not zip_code.strip():
        return "The zip code is missing"
    country = (country_code or "").upper()
    if country in _ZIP and not re.fullmatch(_ZIP[country], zip_code.strip()):
        return f"Invalid zip code {zip_code!r} for {country}"
    return None
