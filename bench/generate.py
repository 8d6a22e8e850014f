"""Realistic CSV exports: 1–5 line items per order, 0–3 parcels, unicode names, rows of an order adjacent
in the orders file (as most ERPs write them) but parcels in a separate file. Deterministic per seed."""

from __future__ import annotations

import csv
import random
from pathlib import Path

__all__ = ["generate", "change_orders"]

FIRST = ["Jana", "Łukasz", "Zoë", "Máire", "Søren", "Ana", "Jürgen", "Chloé", "Ömer", "Anaïs", "Björn", "Émilie", "Tomáš", "Ines"]
LAST = ["Nováková", "Müller", "O'Connor", "Dubois", "Kowalski", "Jensen", "García", "Rossi", "Öztürk", "Schröder", "Weiß"]
STREETS = ["Torstraße", "Hauptstraße", "Rue de Rivoli", "Kastanienallee", "Große Bergstraße", "Via Roma", "Calle Mayor"]
CITIES = [("10119", "Berlin", "DE"), ("80331", "München", "DE"), ("75001", "Paris", "FR"), ("1010", "Wien", "AT"),
          ("00184", "Roma", "IT"), ("28013", "Madrid", "ES"), ("2100", "København", "DK"), ("8001", "Zürich", "CH")]
PRODUCTS = [("TS-{}", "T-Shirt „Basic“ {}"), ("MUG-{}", "Tasse Größe {}"), ("SOCK-{}", "Socken 3er-Pack {}"), ("BOOT-{}", "Wanderstiefel {}")]
CARRIERS = ["DHL", "Hermes", "DPD", "GLS", "UPS", "Deutsche Post", "Kiala Express"]

ORDER_COLUMNS = ["order_number", "order_name", "order_placed_at", "email", "currency", "total_order_price", "shipping_price",
                 "shipping_name", "shipping_address_line_1", "shipping_zip_code", "shipping_city", "shipping_country_code",
                 "sku", "product_title", "quantity", "price"]
PARCEL_COLUMNS = ["order_number", "tracking_number", "carrier", "tracking_url", "shipped_at", "sku", "quantity"]


def _order(rng: random.Random, number: int, version: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    zip_code, city, country = rng.choice(CITIES)
    items = [(sku.format(rng.randint(1, 999)), title.format(rng.randint(1, 50)), rng.randint(1, 3), rng.randint(5, 120))
             for sku, title in rng.sample(PRODUCTS * 2, rng.randint(1, 5))]
    total = sum(q * p for _, _, q, p in items) + 4.9
    day = 1 + number % 28
    head = [str(number), f"#{number}", f"2026-10-{day:02d}T{number % 24:02d}:{number % 60:02d}:00+01:00",
            f"kunde{number}@example.com", "EUR", f"{total + version:.2f}", "4.90", name,
            f"{rng.choice(STREETS)} {rng.randint(1, 200)}", zip_code, city, country]
    rows = [head + [sku, title, str(q), f"{p:.2f}"] for sku, title, q, p in items]
    parcels = []
    for index in range(rng.choice([0, 1, 1, 1, 2, 3])):
        carrier = rng.choice(CARRIERS)
        sku, _, quantity, _ = items[index % len(items)]
        parcels.append([str(number), f"TRK{number:08d}{index}", carrier, "", f"2026-10-{day:02d}T18:00:00+01:00", sku, str(quantity)])
    return rows, parcels


def generate(folder: Path, orders: int, seed: int = 7) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    order_path, parcel_path = folder / "orders_0001.csv", folder / "fulfillments_0001.csv"
    with order_path.open("w", newline="", encoding="utf-8") as of, parcel_path.open("w", newline="", encoding="utf-8") as pf:
        ow, pw = csv.writer(of), csv.writer(pf)
        ow.writerow(ORDER_COLUMNS)
        pw.writerow(PARCEL_COLUMNS)
        for number in range(1, orders + 1):
            rows, parcels = _order(rng, number)
            ow.writerows(rows)
            pw.writerows(parcels)
    return order_path, parcel_path


def change_orders(folder: Path, orders: int, fraction: float, seed: int = 11) -> int:
    """A later export where ``fraction`` of the orders changed (their total); returns how many."""
    rng = random.Random(seed)
    changed = sorted(rng.sample(range(1, orders + 1), max(1, int(orders * fraction))))
    with (folder / "orders_0002.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(ORDER_COLUMNS)
        for number in changed:
            writer.writerows(_order(random.Random(number), number, version=1)[0])
    return len(changed)
