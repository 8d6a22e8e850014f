"""The floor: the least a program can do for the same job — parse the same CSV, build the same bulk
items (the same bytes), PUT them to the same sandbox with the same limits over one keep-alive connection.
No state, no change detection, no retries. The connector's wall time is compared against this."""

from __future__ import annotations

import csv
import gc
import json
import sys
from pathlib import Path

import httpx

from connector.karla.carriers import carrier_fields

__all__ = ["main"]


def _items(folder: Path) -> dict[str, dict]:
    """The connector's bulk items for the generated files, field for field and in its key order (a test
    asserts the same bytes reach the sandbox), built straight from the rows: no parsing of numbers or
    dates beyond ``float``/``int``, no validation. Carrier names map through the connector's table, once
    per distinct name."""
    orders: dict[str, dict] = {}
    with (folder / "orders_0001.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            number = row["order_number"]
            item = orders.get(number)
            if item is None:
                address = {"zip_code": row["shipping_zip_code"], "name": row["shipping_name"],
                           "address_line_1": row["shipping_address_line_1"], "street": row["shipping_address_line_1"],
                           "city": row["shipping_city"], "country_code": row["shipping_country_code"]}
                item = orders[number] = {"id": number, "id_type": "order_number", "order": {
                    "order_number": number, "external_id": number, "order_name": row["order_name"],
                    "order_placed_at": row["order_placed_at"], "email_id": row["email"], "currency": row["currency"],
                    "total_order_price": float(row["total_order_price"]), "shipping_price": float(row["shipping_price"]),
                    "products": [], "discounts": [], "address": address, "segments": []}, "trackings": []}
            item["order"]["products"].append({"title": row["product_title"], "sku": row["sku"],
                                              "quantity": int(row["quantity"]), "price": float(row["price"]), "images": []})
    carriers: dict[str, dict[str, str]] = {}
    with (folder / "fulfillments_0001.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            carrier = carriers.get(row["carrier"])
            if carrier is None:
                carrier = carriers[row["carrier"]] = carrier_fields(row["carrier"])
            orders[row["order_number"]]["trackings"].append(
                {"tracking_number": row["tracking_number"], "tracking_placed_at": row["shipped_at"], **carrier,
                 "products": [{"sku": row["sku"], "quantity": int(row["quantity"]), "images": []}]})
    return orders


def main(folder: str, url: str, slug: str, user: str, key: str, max_items: int, max_bytes: int) -> int:
    requests = 0
    with httpx.Client(base_url=f"{url}/v1", auth=(user, key), headers={"Content-Type": "application/json"}) as client:
        batch: list[bytes] = []
        size = 2

        def flush() -> None:
            nonlocal requests, batch, size
            if batch:
                client.put(f"/shops/{slug}/orders/bulk", content=b"[" + b",".join(batch) + b"]").raise_for_status()
                requests += 1
            batch, size = [], 2

        for item in _items(Path(folder)).values():
            body = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
            if batch and (len(batch) >= max_items or size + 1 + len(body) > max_bytes):
                flush()
            batch.append(body)
            size += len(body) + 1
        flush()
    print(json.dumps({"requests": requests}))
    return 0


if __name__ == "__main__":
    # The floor holds every item until it has sent them all. With the cycle collector on, each full pass
    # walks all of them (at 100k orders 13 s of CPU with it, 8 s without): an artifact, not work the job needs. The
    # connector tunes its collector too (``connector.cli._tune_gc``); the floor's data has no cycles at all.
    gc.disable()
    folder, url, slug, user, key, max_items, max_bytes = sys.argv[1:8]
    sys.exit(main(folder, url, slug, user, key, int(max_items), int(max_bytes)))
