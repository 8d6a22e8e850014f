"""Karla: request models, carrier table and the HTTP client."""

from connector.karla.carriers import CARRIERS, CarrierOverrides, carrier_fields
from connector.karla.client import KarlaClient, KarlaStats
from connector.karla.models import (
    Address, BundledProduct, Discount, Image, OrderFulfillment, OrderPlacement, Product, Tracking,
)

__all__ = [
    "CARRIERS",
    "Address",
    "BundledProduct",
    "CarrierOverrides",
    "Discount",
    "Image",
    "KarlaClient",
    "KarlaStats",
    "OrderFulfillment",
    "OrderPlacement",
    "Product",
    "Tracking",
    "carrier_fields",
]
