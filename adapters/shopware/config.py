"""Settings of the ``shopware`` source: Shopware 6 Admin API with integration credentials (SWIA...)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from adapters.base import SourceConfig
from adapters.http import has_userinfo, safe_scheme
from connector.karla.carriers import CarrierOverrides
from connector.retry import CaFile

__all__ = ["ShopwareConfig", "channel_key"]


def channel_key(value: object) -> str:
    """A sales channel id as Shopware's API writes it (lower-case hex, no dashes), so an id copied from the
    Administration's URL or a database tool (upper-case, a dashed UUID) matches too."""
    return str(value or "").strip().lower().replace("-", "")


class ShopwareConfig(SourceConfig):
    type: Literal["shopware"] = Field("shopware", description="Selects this adapter")
    base_url: str = Field(
        description="Shop URL, e.g. https://shop.example.com (the Admin API lives under /api); http:// only on loopback"
    )
    client_id: str = Field(description="Access key id of a Shopware integration (starts with SWIA)")
    client_secret: SecretStr = Field(description="Secret of that integration (better: env ..._CLIENT_SECRET)")
    page_size: int = Field(100, ge=1, le=500, description="Orders per search request; Shopware 6.6+ refuses more than 500")
    lag_seconds: float = Field(60.0, ge=0, description="A window ends this long before the shop's current time")
    overlap_seconds: float = Field(
        300.0, ge=0, description="Each poll re-reads this much before the last window end (rows committed late)"
    )
    window_hours: float = Field(
        720.0, gt=0, description="Longest time window per scan; a longer backlog is read in windows this long"
    )
    initial_days: float = Field(30.0, gt=0, description="First run without full_sync_since looks back this many days")
    order_states: list[str] = Field(
        ["in_progress", "completed"], description="Order states (technical names) whose orders are sent"
    )
    delivery_states: list[str] = Field(
        ["shipped", "shipped_partially"], description="Delivery states (technical names) whose tracking codes are sent"
    )
    historical_cutoff: date | None = Field(None, description="Deliveries last changed before this date are not sent")
    sales_channels: dict[str, str] = Field(
        default_factory=dict, description="Sales channel id -> Karla shop slug (unlisted channels use shop_slug)"
    )
    exclude_sales_channels: list[str] = Field(
        default_factory=list, description="Sales channel ids whose orders are not sent (skipped, not dead letters)"
    )
    carriers: CarrierOverrides = Field(
        default_factory=dict, description="Shipping method name -> Karla carrier (e.g. 'Paket Express' = 'dhlexp')"
    )
    deposit_line_item_type: str | None = Field(
        None, description="Line item type also sent as a product and counted in the subtotal (e.g. a deposit plugin's)"
    )
    verify_tls: bool = Field(True, description="Verify the shop's TLS certificate (keep on; false is logged as a warning)")
    ca_file: CaFile = Field(
        None, description="PEM file of the CAs that sign the shop's certificate (a private or self-signed one); replaces the default CAs"
    )
    timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one HTTP request")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        """https only: the client secret is sent in the token request's body. Plain http is allowed for a
        loopback host (a local test shop, a TLS-terminating tunnel on this machine), where nothing crosses a network."""
        value = value.strip().rstrip("/").removesuffix("/api")
        if has_userinfo(value):  # ShopwareClient names base_url in every message: a password in it would be everywhere
            raise ValueError("must not contain user:password@ (it would be shown in messages and logs): the connector "
                             "signs in with client_id and client_secret, and cannot pass HTTP basic auth in front of /api")
        if safe_scheme(value):
            return value
        raise ValueError("must start with https:// (http:// only for 127.0.0.1, ::1 or localhost): the shop's URL, "
                         "without /api")


    @field_validator("sales_channels")
    @classmethod
    def _channel_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {channel_key(k): v for k, v in value.items()}

    @field_validator("exclude_sales_channels")
    @classmethod
    def _excluded(cls, value: list[str]) -> list[str]:
        return [channel_key(v) for v in value if v.strip()]

    @model_validator(mode="after")
    def _routed_or_excluded(self) -> ShopwareConfig:
        both = sorted(set(self.sales_channels) & set(self.exclude_sales_channels))
        if both:
            raise ValueError(f"sales channels both routed and excluded: {', '.join(both)}")
        return self

    def shop_slugs(self) -> set[str]:
        return super().shop_slugs() | set(self.sales_channels.values())

    @field_validator("order_states", "delivery_states")
    @classmethod
    def _states(cls, value: list[str]) -> list[str]:
        return [state.strip().lower() for state in value if state.strip()]
