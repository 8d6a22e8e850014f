"""Settings of the ``shopify`` source (Admin GraphQL API)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from adapters.base import SourceConfig
from adapters.http import has_userinfo, safe_scheme
from connector.karla.carriers import CarrierOverrides

__all__ = ["ShopifyConfig"]

_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")
_VERSION = re.compile(r"\d{4}-(01|04|07|10)|unstable")


class ShopifyConfig(SourceConfig):
    type: Literal["shopify"] = Field("shopify", description="Selects this adapter")
    shop_domain: str = Field(description="The shop's permanent domain, your-shop.myshopify.com")
    api_version: str = Field(
        "2026-04", description="Pinned Admin API version; an unsupported one falls forward (logged, and the answered "
        "version decides version-dependent requests)"
    )
    access_token: SecretStr | None = Field(
        None, description="Admin API access token (better: env KARLA_CONNECTOR_SOURCES__<NAME>__ACCESS_TOKEN)"
    )
    client_id: str | None = Field(None, description="App client id for the client-credentials grant (with client_secret)")
    client_secret: SecretStr | None = Field(None, description="App client secret for the client-credentials grant")
    api_base_url: str | None = Field(None, description="Override https://{shop_domain}, e.g. a proxy; http:// only on loopback (tests)")
    page_size: int = Field(
        100, ge=1, le=250, description="Most orders per request; lowered so one request stays under Shopify's 1000-point cost cap"
    )
    lag_seconds: float = Field(60.0, ge=0, description="Orders updated in the last N seconds are left for the next poll")
    lookback_seconds: float = Field(
        300.0, ge=0, description="Each poll re-reads orders updated up to N seconds before the cursor, in case Shopify's "
        "search index showed an update late (unchanged ones are not sent again)"
    )
    recheck_unfulfilled_days: float = Field(
        14.0, ge=0, description="Re-read not (fully) shipped orders of the last N days each poll to catch late trackings (0: off)"
    )
    carriers: CarrierOverrides = Field(default_factory=dict, description="Tracking company -> Karla carrier, overriding built-ins")
    skip_test_orders: bool = Field(True, description="Do not send test orders (Order.test, e.g. the Bogus Gateway)")
    skip_cancelled: bool = Field(
        True, description="Do not send cancelled orders; one sent before it was cancelled is then no longer updated"
    )
    tags_as_segments: bool = Field(True, description="Send the order's tags as Karla segments")
    segment_prefix: str = Field("", description="Prefix for segments made from tags, e.g. 'shopify:'")
    use_bulk_for_full_sync: bool = Field(True, description="Full sync through a bulk operation (falls back to paging)")
    bulk_poll_seconds: float = Field(10.0, gt=0, description="Seconds between status polls of a bulk operation")
    bulk_timeout_seconds: float = Field(
        4 * 3600.0, gt=0, description="Give up on (and cancel) a bulk operation after this long, then page instead"
    )
    # 30, like Karla's and Shopware's: below the daemon's 40 s shutdown grace, so a request on the wire at
    # SIGTERM ends (answered or timed out) before the process does. GraphQL answers in well under a second.
    timeout_seconds: float = Field(30.0, gt=0, description="Per-request HTTP timeout")

    @field_validator("shop_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        if not _DOMAIN.fullmatch(value):
            raise ValueError("must be the shop's permanent domain, like your-shop.myshopify.com")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        """The token goes with every request: never in clear text across a network, nor in a URL that messages show."""
        if value is not None and has_userinfo(value):
            raise ValueError("must not contain user:password@ (it would be shown in messages and logs): the connector "
                             "signs in with access_token, or client_id and client_secret")
        if value is None or safe_scheme(value):
            return value
        raise ValueError("must start with https:// (http:// only for 127.0.0.1, ::1 or localhost)")

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError("must be a quarterly version such as 2026-04")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> ShopifyConfig:
        if bool(self.client_id) != bool(self.client_secret):
            raise ValueError("client_id and client_secret go together")
        if not self.access_token and not self.client_id:
            raise ValueError("set access_token, or client_id and client_secret (client-credentials grant)")
        return self

    @property
    def base_url(self) -> str:
        return (self.api_base_url or f"https://{self.shop_domain}").rstrip("/")

    @property
    def graphql_path(self) -> str:
        return f"/admin/api/{self.api_version}/graphql.json"
