"""The floor: the least a program can do for the same job — parse the same CSV, build the same bulk
items, PUT them to the same sandbox with the same limits over one keep-alive connection. No state, no
change detection, no retries. The connector's wall time is compared against this."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import httpx

__all__ = ["main"]


def _items(folder: Path) -> dict[str, dict]:
    orders: dict[str, dict] = {}
    with (folder / "orders_0001.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            item = orders.get(row["order_number"])
            if item is None:
                item = orders[row["order_number"]] = {"id": row["order_number"], "id_type": "order_number", "trackings": [], "order": {
                    "order_number": row["order_number"], "external_id": row["order_number"], "order_name": row["order_name"],
                    "order_placed_at": row["order_placed_at"], "email_id": row["email"], "currency": row["currency"],
                    "total_order_price": float(row["total_order_price"]), "shipping_price": float(row["shipping_price"]),
                    "address": {"name": row["shipping_name"], "address_line_1": row["shipping_address_line_1"],
                                "zip_code": row["shipping_zip_code"], "city": row["shipping_city"], "country_code": row["shipping_country_code"]},
                    "products": []}}
            item["order"]["products"].append({"sku": row["sku"], "title": row["product_title"], "quantity": int(row["quantity"]), "price": float(row["price"])})
    with (folder / "fulfillments_0001.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            orders[row["order_number"]]["trackings"].append(
                {"tracking_number": row["tracking_number"], "tracking_company": row["carrier"], "products": [{"sku": row["sku"], "quantity": int(row["quantity"])}]})
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
    folder, url, slug, user, key, max_items, max_bytes = sys.argv[1:8]
    sys.exit(main(folder, url, slug, user, key, int(max_items), int(max_bytes)))
