"""Request shapes of Karla's Upsert Order and Bulk Fulfillment endpoints.

Field names and required keys follow ``shared/karla-docs/003_*`` (OrderFulfillmentDTO, OrderPlacementDTO,
OrderTrackingDTO, ProductDTO, AddressWithZipCodeDTO). Adapters build these; validating here means a bad
record fails at mapping time with a field name, before it can reach the outbox.
"""

from __future__ import annotations

from datetime import datetime
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connector.karla.carriers import CARRIERS

__all__ = [
    "Address",
    "BundledProduct",
    "Discount",
    "Image",
    "OrderFulfillment",
    "OrderPlacement",
    "Product",
    "Tracking",
    "IdType",
    "dump",
    "serialise",
    "error_message",
    "explain",
    "merge_trackings",
]

IdType = Literal["uuid", "external_id", "order_name", "order_number"]
_NonEmpty = Field(min_length=1)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Image(_Model):
    src: str = _NonEmpty
    alt: str | None = None


class BundledProduct(_Model):
    """Karla's BaseProductSchema: a product inside a bundle (ProductDTO without ``type`` and ``bundled_products``)."""

    title: str | None = None
    sku: str | None = None
    quantity: int | None = Field(default=None, ge=0)
    price: float | None = None
    size: str | None = None
    weight: float | None = None
    images: list[Image] = Field(default_factory=list)
    product_id: str | None = None
    variant_id: str | None = None


class Product(BundledProduct):
    """Karla's ProductDTO. ``type`` and ``bundled_products`` default to None, left out of the JSON: a product
    that is no bundle serialises as before they existed (its change hash stays)."""

    type: Literal["product", "bundle"] | None = None
    bundled_products: list[BundledProduct] | None = None


class Address(_Model):
    zip_code: str = _NonEmpty
    name: str | None = None
    company: str | None = None
    address_line_1: str | None = None
    address_line_2: str | None = None
    street: str | None = None
    city: str | None = None
    province: str | None = None
    province_code: str | None = None
    country: str | None = None
    country_code: str | None = Field(default=None, min_length=2, max_length=2)
    phone: str | None = None

    @field_validator("country_code")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value


class Discount(_Model):
    code: str = _NonEmpty
    amount: str
    type: str | None = None


class OrderPlacement(_Model):
    order_number: str = _NonEmpty
    external_id: str = ""
    order_name: str | None = None
    order_placed_at: datetime | None = None
    email_id: str | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    total_order_price: float | None = None
    shipping_price: float | None = None
    sub_total_price: float | None = None
    discount_price: float | None = None
    products: list[Product] = Field(default_factory=list)
    discounts: list[Discount] = Field(default_factory=list)
    address: Address
    segments: list[str] = Field(default_factory=list)
    external_customer_id: str | None = None
    order_status_url: str | None = None
    expected_number_of_shipments: int | None = Field(default=None, ge=1, le=100)

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str | None) -> str | None:
        # ISO 4217 (karla-docs 003): "eur" was sent as written, and "E1$" too, for Karla to refuse or misread.
        if value is None:
            return None
        if not (value.isascii() and value.isalpha()):
            raise ValueError(f"{value!r} is not a three-letter currency code such as EUR, CHF or USD")
        return value.upper()

    @model_validator(mode="after")
    def _default_external_id(self) -> OrderPlacement:
        # Karla requires external_id; it defaults to the order number (karla-docs 002, best practices).
        if not self.external_id:
            object.__setattr__(self, "external_id", self.order_number)
        return self


class Tracking(_Model):
    tracking_number: str = _NonEmpty
    tracking_url: str | None = None
    tracking_placed_at: datetime | None = None
    carrier_reference: str | None = None
    tracking_company: str | None = None
    external_shipment_id: str | None = None
    # Left out when empty: Karla reads a missing list as "all of the order's products" (and leaves a shipment's
    # products as they are on an update), an empty one as "this parcel holds nothing" (and clears them).
    products: list[Product] = Field(default_factory=list, exclude_if=lambda products: not products)

    @model_validator(mode="after")
    def _only_known_carriers(self) -> Tracking:
        # A reference outside the enum is a 422 at Karla; demote it to the free-form hint instead.
        ref = self.carrier_reference
        if ref is not None and ref not in CARRIERS:
            object.__setattr__(self, "carrier_reference", None)
            if not self.tracking_company:
                object.__setattr__(self, "tracking_company", ref)
        return self


def merge_trackings(trackings: Sequence[Tracking]) -> list[Tracking]:
    """One tracking per tracking number, in order of first appearance.

    Karla keeps one parcel per number, so two trackings with the same number (items fulfilled apart but
    packed in one box with one label) are one parcel: its products are both lists (a product listed in
    both counts once, quantities added), its time the earlier one, other fields from the first that has
    them. Sent apart, Karla would ignore the repeated number (karla-docs 002: a tracking number must be unique
    among the shipments given, "it will be ignored otherwise") and the second's products would go missing.
    """
    if len({t.tracking_number for t in trackings}) == len(trackings):
        return list(trackings)
    merged: dict[str, Tracking] = {}
    repeated: set[str] = set()
    for tracking in trackings:
        if (text := serialise(tracking)) in repeated:
            continue  # the same tracking listed twice (one fulfillment naming its number twice): one parcel
        repeated.add(text)
        first = merged.get(tracking.tracking_number)
        merged[tracking.tracking_number] = tracking if first is None else _merge(first, tracking)
    return list(merged.values())


def _merge(first: Tracking, second: Tracking) -> Tracking:
    update: dict[str, Any] = {name: getattr(second, name) for name in type(first).model_fields
                              if getattr(first, name) is None and getattr(second, name) is not None}
    times = [t for t in (first.tracking_placed_at, second.tracking_placed_at) if t is not None]
    if len(times) == 2:
        update["tracking_placed_at"] = min(times)
    update["products"] = _add_products([*first.products, *second.products])
    return first.model_copy(update=update)


def _add_products(products: list[Product]) -> list[Product]:
    """The same product (every field but the quantity equal) listed once, with its quantities added."""
    found: dict[str, Product] = {}
    for i, product in enumerate(products):
        key = product.model_dump_json(exclude={"quantity"}) if product.quantity is not None else f"#{i}"
        same = found.get(key)
        found[key] = product if same is None else same.model_copy(update={"quantity": same.quantity + product.quantity})  # type: ignore[operator]
    return list(found.values())


class OrderFulfillment(_Model):
    id: str = _NonEmpty
    id_type: IdType = "order_number"
    order: OrderPlacement | None = None
    trackings: list[Tracking] = Field(default_factory=list)


def serialise(model: BaseModel) -> str:
    """The one serialisation of a request part: its change hash and the bytes sent are both this text.

    Pydantic's own JSON (fields in model order, no ``None``, UTF-8 kept) is deterministic for a given
    model and ~4x faster than ``json.dumps`` of a dumped dict, which showed in the 100k benchmark.
    """
    return model.model_dump_json(exclude_none=True)


def dump(model: BaseModel) -> dict[str, Any]:
    """The same content as ``serialise``, as a JSON-ready dict (for callers that build JSON around it)."""
    return model.model_dump(mode="json", exclude_none=True)


def explain(exc: ValidationError) -> str:
    """A one-line reason a merchant can act on: ``address.zip_code: must not be empty``."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {error_message(err)}" for err in exc.errors())


def error_message(err: Any) -> str:
    """One validation error's words for a merchant: "must not be empty", or a validator's own message
    without pydantic's "Value error, " before it."""
    if err["type"] == "string_too_short" and err.get("input") in ("", None):
        return "must not be empty"
    return str(err["ctx"]["error"]) if err["type"] == "value_error" and "error" in err.get("ctx", {}) else str(err["msg"])
