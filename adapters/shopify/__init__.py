"""The ``shopify`` source: orders and fulfillments from the Admin GraphQL API."""

from __future__ import annotations

from adapters.shopify.adapter import ShopifyAdapter
from adapters.shopify.config import ShopifyConfig

__all__ = ["ShopifyAdapter", "ShopifyConfig"]
