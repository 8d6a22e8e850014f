"""Settings of the ``csv`` source: where the files are, how they are named and spelled, what to do after."""

from __future__ import annotations

import codecs
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapters.base import SourceConfig
from adapters.csv.files import safe_folder
from adapters.csv.encoding import line_codec
from connector.errors import ConfigError
from connector.karla.carriers import CarrierOverrides

__all__ = ["Columns", "CsvConfig", "ORDER_FIELDS", "FULFILLMENT_FIELDS", "SETTLE_SECONDS"]

ORDER_FIELDS = (
    "order_number", "external_id", "order_name", "order_placed_at", "email", "currency", "total_order_price",
    "shipping_price", "sub_total_price", "discount_price", "shipping_name", "shipping_company",
    "shipping_address_line_1", "shipping_address_line_2", "shipping_zip_code", "shipping_city",
    "shipping_province_code", "shipping_country_code", "shipping_phone", "expected_number_of_shipments",
    "sku", "product_title", "quantity", "price", "image_url",
)
FULFILLMENT_FIELDS = ("order_number", "tracking_number", "carrier", "tracking_url", "shipped_at", "sku", "quantity")
# An ERP may pause mid-file (a flush per batch, a slow query): a file read then is read in part, and with
# archive or delete moved away while the ERP still writes to it. A minute of quiet rules that out in practice.
SETTLE_SECONDS = 60.0


class Columns(BaseModel):
    """Logical field -> the header your files use, or a list of them: the orders file may say
    ``Bestellnummer`` where the parcel export says ``Auftragsnummer``. Unlisted fields keep their logical name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mapping: dict[str, str | list[str]] = Field(default_factory=dict)

    @field_validator("mapping")
    @classmethod
    def _names(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for field, names in value.items():
            if isinstance(names, list) and not names:
                raise ValueError(f'{field}: give a column name, or a list of them such as ["Bestellnummer", "Auftragsnummer"]')
        return value

    def names(self, field: str) -> tuple[str, ...]:
        """The header names of ``field``, in the order they are looked for in a file's header."""
        names = self.mapping.get(field, field)
        return (names,) if isinstance(names, str) else tuple(names)

    def header(self, field: str) -> str:
        return self.names(field)[0]


class CsvConfig(SourceConfig):
    type: Literal["csv"] = "csv"
    url: str = Field(description="file:///path/to/folder, a plain path, or sftp://user@host:port/path")
    orders_glob: str = Field("orders*.csv", description="File names with one row per order line item")
    fulfillments_glob: str = Field("fulfillments*.csv", description="File names with one row per parcel (or parcel and product)")
    encoding: str = Field("utf-8-sig", description="Text encoding of the files, e.g. cp1252")
    delimiter: str | None = Field(None, description="Field delimiter; default: detected from the header (, or ;)")
    settle_seconds: float = Field(SETTLE_SECONDS, ge=0, description="Read a file only when it has not changed for this long "
                                  "(default 60; 0 when done_suffix is set: the marker says the file is complete)")
    done_suffix: str | None = Field(None, description='Read NAME only when NAME + this suffix (e.g. ".done") exists')
    after_processing: Literal["keep", "archive", "delete"] = Field("keep", description="What to do with a file once read")
    archive_folder: str = Field("archive", description="Folder (inside the source folder) for after_processing = archive")
    error_folder: str | None = Field(None, description="Move files with dead-lettered rows here instead (inside the source folder)")
    carriers: CarrierOverrides = Field(default_factory=dict, description="Carrier names -> Karla carrier enum, overriding built-ins")
    columns: Columns = Field(default_factory=Columns, description="Header names, if they differ from the defaults")
    default_currency: str | None = Field(None, description="Currency when the file has no currency column")
    decimal_comma: bool | None = Field(None, description="How to read 1.234 / 1,234: true = the comma is the decimal mark, "
                                       "false = the point is; unset = guess, refusing such ambiguous values")
    timezone: str = Field("UTC", description="Time zone of timestamps written without an offset, e.g. Europe/Berlin")
    bucket_bytes: int = Field(2_000_000, ge=10_000, description="A file whose rows are not grouped by order and larger than this is grouped on disk, bounding memory")
    page_size: int = Field(500, ge=1, le=5000, description="Orders per committed page")
    sftp: Any = Field(None, description="[sources.NAME.sftp] connection settings for sftp:// URLs")

    @model_validator(mode="before")
    @classmethod
    def _no_wait_with_markers(cls, values: Any) -> Any:
        """With ``done_suffix`` the marker says when a file is complete: unless set, no settle wait on top."""
        if isinstance(values, dict) and values.get("done_suffix") and values.get("settle_seconds") is None:
            return {**values, "settle_seconds": 0.0}
        return values

    @field_validator("columns", mode="before")
    @classmethod
    def _columns(cls, value: Any) -> Any:
        if isinstance(value, dict) and "mapping" not in value:
            unknown = sorted(set(value) - set(ORDER_FIELDS) - set(FULFILLMENT_FIELDS))
            if unknown:
                raise ValueError(f"unknown column field(s) {unknown}; known: {', '.join(ORDER_FIELDS + FULFILLMENT_FIELDS[1:])}")
            return {"mapping": value}
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        """``file://srv/exports`` reads as host ``srv`` and path ``/exports``: a folder other than the one
        meant, where ``after_processing = "delete"`` would delete files. Only an empty host (three
        slashes) or ``localhost`` names a local path."""
        parts = urlsplit(value)
        if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
            path = value.split("://", 1)[1]
            raise ValueError(f"{value!r} names a host ({parts.netloc!r}), not a folder: write file:///{path} "
                             f"(three slashes) or the plain path /{path}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin or UTC") from None
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            info = codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; use e.g. utf-8-sig, utf-8, cp1252 or latin-1") from None
        if not getattr(info, "_is_text_encoding", True):  # base64, rot13, zip: codecs, but not for text files
            raise ValueError(f"{value!r} is not a text encoding; use e.g. utf-8-sig, utf-8, cp1252 or latin-1")
        try:
            line_codec(value)  # UTF-16/32: refused at start-up, not at the first file
        except ConfigError as exc:
            raise ValueError(f"{value!r}: " + str(exc).removeprefix(f"encoding = {value!r}: ")) from None
        return value

    @field_validator("archive_folder", "error_folder")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        """Checked by the rule moving files uses (``files.safe_folder``): refused at start, not at every file."""
        if value is None:
            return None
        try:
            safe_folder(value)
        except ConfigError:
            raise ValueError("must be a relative path inside the source folder (no '..', not absolute)") from None
        return value

    @field_validator("default_currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        """Karla takes a three-letter ISO 4217 code: "euro" made every order a dead letter blaming its row."""
        if value is None:
            return None
        code = value.strip().upper()
        if len(code) != 3 or not (code.isascii() and code.isalpha()):
            raise ValueError(f"{value!r} is not a three-letter currency code such as EUR, CHF or USD")
        return code

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError("must be a single character such as , or ;")
        return value

    @field_validator("sftp", mode="before")
    @classmethod
    def _sftp(cls, value: Any) -> Any:
        if value is None:
            return None
        from adapters.csv.sftp import SftpSettings  # optional part: only sftp:// sources need it

        return SftpSettings.model_validate(value)
