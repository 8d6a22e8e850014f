"""What Karla got of a CSV parcel's products and of an empty-looking shipment count (review karla7).

A parcel row told Karla the sku and quantity only, though a combined export's row (and a parcel file with
product columns) carries the title, price and image too: Karla keeps a shipment's products apart from the
order's, and its docs ask for the per-shipment products so customers can tell which items are in which
package, with images it renders. And ``expected_number_of_shipments`` 0 (an ERP's empty numeric column)
made the whole order a dead letter, though Karla defaults to 1.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SLUG, cli, write_config

COMBINED = {"orders_glob": "export*.csv", "fulfillments_glob": "export*.csv", "default_currency": "EUR"}


def _sync(tmp_path: Path, sandbox, files: dict[str, str], **source: object) -> tuple[dict, list[dict]]:
    """One real `sync` of ``files``: what Karla got, and the dead letters."""
    config = write_config(tmp_path, sandbox.url, source={"default_currency": "EUR", **source})
    for name, text in files.items():
        (tmp_path / "files" / name).write_text(text, encoding="utf-8")
    run = cli(config, "sync")
    assert run.returncode in (0, 1), run.stderr[-800:]
    return sandbox.orders(SLUG), json.loads(cli(config, "dlq", "list", "--json").stdout)


def _parcels(order: dict) -> dict[str, list[dict]]:
    """Each parcel's products as sent (an empty ``images`` list is how a product without one serialises)."""
    return {t["tracking_number"]: [{k: v for k, v in p.items() if v != []} for p in t["products"]]
            for t in order["trackings"]}


def test_a_combined_exports_parcels_carry_the_rows_title_price_and_image(tmp_path: Path, sandbox) -> None:
    export = ("order_number;shipping_zip_code;sku;product_title;quantity;price;image_url;tracking_number;carrier\n"
              "2001;10115;A1;Blue Shirt;1;10,00;https://cdn.example/a1.png;PKG1;DHL\n"
              "2001;10115;B2;Red Hat;2;5,00;;PKG2;DHL\n"
              "2001;10115;RAB;Voucher;1;-3,00;;PKG2;DHL\n")  # a discount line shipped with it: no product of it
    orders, letters = _sync(tmp_path, sandbox, {"export_001.csv": export}, **COMBINED)
    assert letters == []
    parcels = _parcels(orders["2001"])
    # before: [{"sku": "A1", "quantity": 1}] and [{"sku": "B2", "quantity": 2}, {"sku": "RAB", "quantity": 1}]
    assert parcels["PKG1"] == [{"sku": "A1", "title": "Blue Shirt", "quantity": 1, "price": 10.0,
                                "images": [{"src": "https://cdn.example/a1.png"}]}]
    assert parcels["PKG2"] == [{"sku": "B2", "title": "Red Hat", "quantity": 2, "price": 5.0}]
    assert orders["2001"]["trackings"][0]["products"][0] == orders["2001"]["products"][0]  # read as the order's is


def test_a_bad_price_in_a_parcel_row_is_left_out_with_a_warning_and_nothing_is_taken_from_the_order(
        tmp_path: Path, sandbox) -> None:
    """A price only decorates the tracking page; the tracking number is what a parcel is for (review chg7b: the
    parcel was a dead letter, its tracking number never reached Karla). Only sku and quantity can refuse it."""
    ordered = ("order_number;shipping_zip_code;sku;product_title;quantity;price;image_url\n"
               "P1;10115;A1;Hemd;1;12,50;https://cdn.example/a1.png\nP1;10115;B2;Hose;1;20,00;\n"
               "P2;10115;C3;Mütze;1;7,00;https://cdn.example/c3.png\n")
    with_products = ("order_number;tracking_number;carrier;sku;product_title;quantity;price;image_url\n"
                     "P1;JJD1;DHL;A1;Hemd;1;12,50;https://cdn.example/a1.png\n"
                     "P1;JJD2;DHL;B2;Hose;1;zwölf;\n")
    plain = "order_number;tracking_number;carrier;sku;quantity\nP2;JJD3;DHL;C3;1\n"  # no product columns
    config = write_config(tmp_path, sandbox.url, source={"default_currency": "EUR"})
    for name, text in {"orders_001.csv": ordered, "fulfillments_001.csv": with_products, "fulfillments_002.csv": plain}.items():
        (tmp_path / "files" / name).write_text(text, encoding="utf-8")
    run = cli(config, "sync")
    assert run.returncode == 0, run.stderr[-800:]
    assert json.loads(cli(config, "dlq", "list", "--json").stdout) == []  # before: a letter at fulfillments_001.csv:3
    parcels = _parcels(sandbox.orders(SLUG)["P1"])
    assert parcels == {"JJD1": [{"sku": "A1", "title": "Hemd", "quantity": 1, "price": 12.5,
                                 "images": [{"src": "https://cdn.example/a1.png"}]}],
                       "JJD2": [{"sku": "B2", "title": "Hose", "quantity": 1}]}
    assert ("fulfillments_001.csv:3: price 'zwölf' is not a number" in run.stderr
            and "left out of that product of parcel JJD2 of order P1, which is sent without it" in run.stderr), run.stderr
    assert _parcels(sandbox.orders(SLUG)["P2"]) == {"JJD3": [{"sku": "C3", "quantity": 1}]}  # the order's title is not invented


def test_an_ambiguous_price_and_a_title_only_row_still_send_their_parcels(tmp_path: Path, sandbox) -> None:
    """The review's case: the orders file writes 1.299,00, the warehouse's parcel file 1.299 (ambiguous); a parcel
    file naming its products by title alone sent no product list (Karla: all of the order's products)."""
    ordered = ("order_number;shipping_zip_code;sku;product_title;quantity;price\n"
               "P1;10115;A1;Sofa;1;1.299,00\nP2;10115;B1;Hemd;1;10,00\nP2;10115;B2;Hose;1;20,00\n")
    parcels = "order_number;tracking_number;carrier;sku;quantity;price\nP1;JJD1;DHL;A1;1;1.299\n"
    titled = "order_number;tracking_number;carrier;product_title;quantity\nP2;JJD2;DHL;Hemd;1\n"
    orders, letters = _sync(tmp_path, sandbox, {"orders_001.csv": ordered, "fulfillments_001.csv": parcels,
                                                "fulfillments_002.csv": titled})
    assert letters == []  # before: fulfillments_001.csv:2 "price '1.299' is not a number: ambiguous …"
    assert _parcels(orders["P1"]) == {"JJD1": [{"sku": "A1", "quantity": 1}]}
    assert _parcels(orders["P2"]) == {"JJD2": [{"title": "Hemd", "quantity": 1}]}  # before: no product list


def test_a_bad_quantity_still_refuses_its_parcel(tmp_path: Path, sandbox) -> None:
    ordered = "order_number;shipping_zip_code;sku;quantity\nP1;10115;A1;1\n"
    parcels = "order_number;tracking_number;carrier;sku;quantity;price\nP1;JJD1;DHL;A1;eins;1.299\n"
    orders, letters = _sync(tmp_path, sandbox, {"orders_001.csv": ordered, "fulfillments_001.csv": parcels})
    assert _parcels(orders["P1"]) == {}
    (letter,) = letters
    assert letter["location"] == "fulfillments_001.csv:2" and letter["reason"].startswith("quantity 'eins'"), letter


def test_a_quantity_alone_names_no_parcel_product(tmp_path: Path, sandbox) -> None:
    """A carrier export's quantity column (packages) with no sku or title: the parcel goes without a product list
    (all of the order's products), not with a nameless product replacing them."""
    ordered = "order_number;shipping_zip_code;sku;quantity\nP1;10115;A1;2\n"
    parcels = "order_number;tracking_number;carrier;quantity\nP1;JJD1;DHL;1\n"
    orders, letters = _sync(tmp_path, sandbox, {"orders_001.csv": ordered, "fulfillments_001.csv": parcels})
    (tracking,) = orders["P1"]["trackings"]
    assert letters == [] and tracking["tracking_number"] == "JJD1" and "products" not in tracking


def test_expected_shipments_written_0_is_left_out_and_other_bad_counts_are_letters(tmp_path: Path, sandbox) -> None:
    ordered = ("order_number;shipping_zip_code;expected_number_of_shipments;sku;quantity\n"
               "3001;10115;0;A1;1\n3002;10115;0,00;A1;1\n3003;10115;-1;A1;1\n3004;10115;101;A1;1\n3005;10115;2;A1;1\n")
    orders, letters = _sync(tmp_path, sandbox, {"orders_001.csv": ordered})
    assert sorted(orders) == ["3001", "3002", "3005"]  # before: 3001 and 3002 were dead letters
    assert orders["3001"].get("expected_number_of_shipments") in (None, 1)  # not sent: Karla's default
    assert orders["3005"]["expected_number_of_shipments"] == 2
    reasons = {x["location"]: x["reason"] for x in letters}
    assert set(reasons) == {"orders_001.csv:4", "orders_001.csv:5"}
    assert reasons["orders_001.csv:4"].startswith("order 3003: expected_number_of_shipments '-1' (expected_number_of_shipments)")
    assert reasons["orders_001.csv:5"].startswith("order 3004: expected_number_of_shipments '101'")
