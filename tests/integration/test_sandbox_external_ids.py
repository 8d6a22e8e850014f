"""An order's external_id is unique among a shop's orders (karla-docs 002: "If provided, it must be unique
among all your orders"; 000: it is "the key for idempotent updates"). The sandbox refuses a second order
with one, 409 ``order_exists`` naming both orders, and the connector letters that order with its words."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connector.sandbox import Sandbox
from tests.conftest import SLUG, cli, write_config


def order(number: str, external_id: str | None = None, **item: object) -> dict:
    body: dict = {"order_number": number, "address": {"zip_code": "10119", "country_code": "DE"}}
    if external_id is not None:
        body["external_id"] = external_id
    return {"id": number, "order": body, "trackings": [], **item}


@pytest.fixture()
def http() -> Iterator[tuple[Sandbox, httpx.Client]]:
    with Sandbox(credentials={"shop": "key"}) as sb, httpx.Client(base_url=f"{sb.url}/v1/shops/shop", auth=("shop", "key")) as client:
        yield sb, client


def test_a_second_order_with_an_external_id_is_refused_naming_both(http: tuple[Sandbox, httpx.Client]) -> None:
    sb, client = http
    assert client.put("/orders", json=order("1001-1", "SHOP-555")).status_code == 200
    assert client.put("/orders", json=order("1001-1", "SHOP-555")).status_code == 200  # the same order again: an update
    alone = client.put("/orders", json=order("1001-2", "SHOP-555"))
    assert (alone.status_code, alone.json()["key"]) == (409, "order_exists")
    assert "1001-2" in alone.json()["message"] and "1001-1" in alone.json()["message"] and "SHOP-555" in alone.json()["message"]
    bulk = client.put("/orders/bulk", json=[order("7"), order("1001-2", "SHOP-555")])
    assert (bulk.status_code, bulk.json()["key"]) == (409, "order_exists")
    assert [(e["loc"], e["type"]) for e in bulk.json()["errors"]] == [(["body", 1, "order", "external_id"], "order_exists")]
    assert set(sb.orders("shop")) == {"1001-1"}  # all or nothing, as for any refused bulk
    # a default external_id (the order number) counts too, and two new orders in one call
    same_call = client.put("/orders/bulk", json=[order("8", "X"), order("9", "X")])
    assert same_call.status_code == 409 and [e["loc"][1] for e in same_call.json()["errors"]] == [1]
    assert client.put("/orders", json=order("20")).status_code == 200
    assert client.put("/orders", json=order("21", "20")).status_code == 409


def test_an_external_id_moves_with_its_order(http: tuple[Sandbox, httpx.Client]) -> None:
    sb, client = http
    assert client.put("/orders", json=order("1", "EXT-1")).status_code == 200
    renumbered = order("1-A", "EXT-1", id="EXT-1", id_type="external_id")  # addressed by it: the number changes
    assert client.put("/orders", json=renumbered).status_code == 200
    assert sb.orders("shop")["1-A"]["external_id"] == "EXT-1" and "1" not in sb.orders("shop")
    assert client.put("/orders", json=order("1-A", "EXT-2")).status_code == 200  # its external_id changes
    assert client.put("/orders", json=order("2", "EXT-1")).status_code == 200  # so EXT-1 is free again
    assert client.get("/orders", params={"external_id": "EXT-1"}).json()[0]["order_number"] == "2"


def test_the_connector_letters_the_second_order_with_karlas_words(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source={"default_currency": "EUR"})
    (tmp_path / "files" / "orders_001.csv").write_text(
        "order_number;external_id;shipping_zip_code;sku;quantity\n1001-1;SHOP-555;10115;A1;1\n1001-2;SHOP-555;10115;B2;1\n")
    done = cli(config, "sync")
    assert done.returncode == 1, done.stdout + done.stderr
    assert sorted(sandbox.orders(SLUG)) == ["1001-1"]
    (letter,) = json.loads(cli(config, "dlq", "list", "--json").stdout)
    assert letter["order"] == "1001-2" and letter["reason"].startswith("Karla rejected order 1001-2: ")
    assert "external_id 'SHOP-555', which order 1001-1" in letter["reason"] and "(order_exists)" in letter["reason"]
