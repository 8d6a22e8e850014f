"""The ``shopware`` source: orders and deliveries from the Shopware 6 Admin API."""

from __future__ import annotations

from adapters.shopware.adapter import ShopwareAdapter
from adapters.shopware.config import ShopwareConfig

__all__ = ["ShopwareAdapter", "ShopwareConfig"]
