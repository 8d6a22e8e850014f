"""Validation as Karla's docs describe it (``shared/karla-docs/003_*``): FastAPI-style ``loc`` paths, the
documented error types, plus what the real API checks beyond the schema (zip codes per country)."""

from __future__ import annotations

import re
from typing import Any

from connector.karla.carriers import CARRIERS

__all__ = ["validate_item", "ID_TYPES"]

ID_TYPES = ("uuid", "external_id", "order_name", "order_number")
# Postal code shapes for the countries merchants ship to most; others accept any non-empty value.
_ZIP = {
    "DE": r"\d{5}", "AT": r"\d{4}", "CH": r"\d{4}", "FR": r"\d{5}", "IT": r"\d{5}", "ES": r"\d{5}", "NL": r"\d{4} ?[A-Za-z]{2}",
    "BE": r"\d{4}", "DK": r"\d{4}", "PL": r"\d{2}-\d{3}", "US": r"\d{5}(-\d{4})?",
}


def _err(loc: list[Any], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def validate_item(item: Any, loc: list[Any]) -> list[dict[str, Any]]:
    """Errors for one OrderFulfillment object; ``loc`` is its path (``["body"]`` or ``["body", 3]``)."""
    if not isinstance(item, dict):
        return [_err(loc, "Input should be a valid object", "dict_type")]
    errors: list[dict[str, Any]] = []
    if not _text(item.get("id")):
        errors.append(_err([*loc, "id"], "Field required", "missing"))
    if item.get("id_type", "order_number") not in ID_TYPES:
        errors.append(_err([*loc, "id_type"], f"Input should be {', '.join(ID_TYPES)}", "enum"))
    trackings = item.get("trackings")
    if not isinstance(trackings, list):
        errors.append(_err([*loc, "trackings"], "Field required", "missing"))
        trackings = []
    order = item.get("order")
    if order is not None:
        errors += _validate_order(order, [*loc, "order"])
    for index, tracking in enumerate(trackings):
        errors += _validate_tracking(tracking, [*loc, "trackings", index])
    return errors


def _validate_order(order: Any, loc: list[Any]) -> list[dict[str, Any]]:
    if not isinstance(order, dict):
        return [_err(loc, "Input should be a valid object", "dict_type")]
    errors = []
    if not _text(order.get("order_number")):
        errors.append(_err([*loc, "order_number"], "Field required", "missing"))
    address = order.get("address")
    if not isinstance(address, dict):
        errors.append(_err([*loc, "address"], "Field required", "missing"))
        return errors
    zip_code, country = address.get("zip_code"), str(address.get("country_code") or "").upper()
    if not _text(zip_code):
        errors.append(_err([*loc, "address", "zip_code"], "The zip code is missing", "zip_code_invalid"))
    elif country in _ZIP and not re.fullmatch(_ZIP[country], str(zip_code).strip()):
        errors.append(_err([*loc, "address", "zip_code"], f"Invalid zip code {zip_code!r} for {country}", "zip_code_invalid"))
    return errors


def _validate_tracking(tracking: Any, loc: list[Any]) -> list[dict[str, Any]]:
    if not isinstance(tracking, dict):
        return [_err(loc, "Input should be a valid object", "dict_type")]
    errors = []
    if not _text(tracking.get("tracking_number")):
        errors.append(_err([*loc, "tracking_number"], "Field required", "missing"))
    reference = tracking.get("carrier_reference")
    if reference is not None and reference not in CARRIERS:
        errors.append(_err([*loc, "carrier_reference"], f"Invalid carrier reference {reference!r}", "carrier_reference_invalid"))
    return errors
