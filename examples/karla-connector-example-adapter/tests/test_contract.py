"""The example adapter passes karla-connector's contract kit: this is all an author needs to write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.testing import AdapterContract
from karla_example_adapter import JsonlAdapter, JsonlConfig

ROWS = [
    {"number": "A-1", "updated": "2026-11-20T10:00:00Z", "zip": "10119", "items": [{"sku": "S1", "title": "Mug", "qty": 1, "price": 9.5}],
     "parcels": [{"code": "T1", "carrier": "Hermes", "skus": ["S1"]}]},
    {"number": "A-2", "updated": "2026-11-20T10:00:00Z", "zip": "80331"},
    {"number": "A-3", "updated": "2026-11-20T11:00:00+01:00", "zip": ""},  # the same instant: a page ends inside it
    {"number": "A-4", "updated": "2026-11-22T08:00:00Z", "zip": "1010"},
]


class TestJsonlAdapter(AdapterContract):
    expected = {"A-1": {"order": {"order_number": "A-1", "address": {"zip_code": "10119"}},
                        "trackings": [{"tracking_number": "T1", "carrier_reference": "hrs"}]}}

    @pytest.fixture(autouse=True)
    def _data(self, tmp_path: Path) -> None:
        self.path = tmp_path / "orders.jsonl"
        lines = [json.dumps(r) for r in ROWS]
        lines.insert(2, '{"number": "A-9", "updated": null}')  # a dead letter, reported once
        self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def make_adapter(self, context):  # type: ignore[no-untyped-def]
        return JsonlAdapter("toy", JsonlConfig(path=self.path, page_size=2), context)

    def make_bad_adapter(self, context):  # type: ignore[no-untyped-def]
        return JsonlAdapter("toy", JsonlConfig(path=self.path.with_name("missing.jsonl")), context)
