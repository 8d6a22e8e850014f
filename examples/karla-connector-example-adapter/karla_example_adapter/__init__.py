"""A toy source for karla-connector: one JSON object per line, each an order with its parcels.

    {"number": "A-1", "updated": "2026-11-20T10:00:00Z", "email": "a@example.com", "zip": "10119",
     "items": [{"sku": "S1", "title": "Mug", "qty": 1, "price": 9.5}],
     "parcels": [{"code": "T1", "carrier": "DHL", "skus": ["S1"]}]}
"""

from karla_example_adapter.adapter import JsonlAdapter, JsonlConfig

__all__ = ["JsonlAdapter", "JsonlConfig"]
