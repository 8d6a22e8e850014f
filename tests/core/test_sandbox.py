"""The Karla sandbox validates and stores like the docs describe, over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connector.sandbox import Faults, Sandbox


@pytest.fixture()
def sb() -> Iterator[Sandbox]:
    with Sandbox(credentials={"shop": "key"}, bulk_max_items=3, bulk_max_bytes=5_000) as sandbox:
        yield sandbox


@pytest.fixture()
def http(sb: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{sb.url}/v1/shops/shop", auth=("shop", "key")) as client:
        yield client


def order(number: str, zip_code: str = "10119", trackings: list | None = None) -> dict:
    return {"id": number, "order": {"order_number": number, "address": {"zip_code": zip_code, "country_code": "DE"}}, "trackings": trackings or []}


def test_auth_missing_is_400_and_wrong_is_401(sb: Sandbox) -> None:
    missing = httpx.put(f"{sb.url}/v1/shops/shop/orders", json=order("1"))
    wrong = httpx.put(f"{sb.url}/v1/shops/shop/orders", json=order("1"), auth=("shop", "nope"))
    assert (missing.status_code, missing.json()["key"]) == (400, "invalid_merchant_or_key")
    assert (wrong.status_code, wrong.json()["key"]) == (401, "invalid_merchant_or_key")


def test_upsert_creates_updates_and_upserts_trackings_by_number(sb: Sandbox, http: httpx.Client) -> None:
    assert http.put("/orders", json=order("1", trackings=[{"tracking_number": "T1", "tracking_url": "a"}])).status_code == 200
    assert http.put("/orders", json={"id": "1", "trackings": [{"tracking_number": "T1", "tracking_url": "b"}, {"tracking_number": "T2"}]}).status_code == 200
    assert http.put("/orders", json=order("1", zip_code="80331")).status_code == 200
    stored = sb.orders("shop")["1"]
    assert stored["address"]["zip_code"] == "80331" and stored["external_id"] == "1"
    assert [(t["tracking_number"], t.get("tracking_url")) for t in stored["trackings"]] == [("T1", "b"), ("T2", None)]
    found = http.get("/orders", params={"order_number": "1"}).json()
    assert len(found) == 1 and found[0]["uuid"]


def test_a_tracking_number_repeated_in_one_item_is_ignored(sb: Sandbox, http: httpx.Client) -> None:
    # karla-docs 002: the number must be unique among the shipments given, "it will be ignored otherwise"
    body = order("1", trackings=[{"tracking_number": "T1", "tracking_url": "first"}, {"tracking_number": "T1", "tracking_url": "second"}])
    assert http.put("/orders", json=body).status_code == 200
    assert [(t["tracking_number"], t["tracking_url"]) for t in sb.orders("shop")["1"]["trackings"]] == [("T1", "first")]


def test_trackings_only_for_unknown_order_is_404(http: httpx.Client) -> None:
    response = http.put("/orders", json={"id": "404", "trackings": [{"tracking_number": "X"}]})
    assert (response.status_code, response.json()["key"]) == (404, "order_not_found")


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        (order("1", zip_code=""), ["body", "order", "address", "zip_code"], "zip_code_invalid"),
        (order("1", zip_code="ABCDE"), ["body", "order", "address", "zip_code"], "zip_code_invalid"),
        (order("1", trackings=[{"tracking_number": "T", "carrier_reference": "hermes"}]), ["body", "trackings", 0, "carrier_reference"], "carrier_reference_invalid"),
        (order("1", trackings=[{"carrier_reference": "dhl"}]), ["body", "trackings", 0, "tracking_number"], "missing"),
        ({"order": order("1")["order"]}, ["body", "id"], "missing"),
        ({"id": "1"}, ["body", "trackings"], "missing"),
    ],
)
def test_validation_errors_name_the_field(http: httpx.Client, body: dict, loc: list, type_: str) -> None:
    response = http.put("/orders", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {"loc": loc, "type": type_} in [{"loc": e["loc"], "type": e["type"]} for e in errors]


def test_bulk_applies_all_or_rejects_naming_the_index(sb: Sandbox, http: httpx.Client) -> None:
    assert http.put("/orders/bulk", json=[order("1"), {"id": "1", "trackings": [{"tracking_number": "T"}]}]).status_code == 200
    bad = http.put("/orders/bulk", json=[order("2"), order("3", zip_code="x"), {"id": "9", "trackings": [{"tracking_number": "Y"}]}])
    assert bad.status_code == 422
    locs = {tuple(e["loc"][:2]): e["type"] for e in bad.json()["errors"]}
    assert locs == {("body", 1): "zip_code_invalid", ("body", 2): "order_not_found"}
    assert set(sb.orders("shop")) == {"1"}  # nothing of the rejected call was stored


def test_bulk_limits_answer_413(http: httpx.Client) -> None:
    assert http.put("/orders/bulk", json=[order(str(i)) for i in range(4)]).status_code == 413
    big = [order("1") | {"order": order("1")["order"] | {"order_name": "x" * 6000}}]
    assert http.put("/orders/bulk", json=big).status_code == 413


def test_scripted_and_random_faults(sb: Sandbox, http: httpx.Client) -> None:
    sb.fail_next(503)
    sb.fail_next(429, retry_after=2)
    sb.fail_next(429)
    statuses = [http.put("/orders", json=order("1")) for _ in range(4)]
    assert [r.status_code for r in statuses] == [503, 429, 429, 200]
    assert statuses[1].headers["Retry-After"] == "2" and "Retry-After" not in statuses[2].headers
    sb.faults = Faults(error_rate=0.5, seed=42)
    first = [http.put("/orders", json=order("1")).status_code for _ in range(20)]
    sb.faults = Faults(error_rate=0.5, seed=41)
    sb.faults = Faults(error_rate=0.5, seed=42)
    again = [http.put("/orders", json=order("1")).status_code for _ in range(20)]
    assert first == again and {500, 502, 503} & set(first) and 200 in first


def test_keep_alive_and_request_log(sb: Sandbox, http: httpx.Client) -> None:
    for number in range(5):
        http.put("/orders", json=order(str(number)))
    assert len(sb.requests) == 5 and all(r.status == 200 and r.body_bytes > 0 for r in sb.requests)
    assert sb.wait_for(lambda s: len(s.requests) >= 5, timeout=1)


def test_scripted_answers_carry_any_body_content_type_and_headers(sb: Sandbox, http: httpx.Client) -> None:
    sb.fail_next(404, body={"detail": "Not Found"})
    sb.fail_next(404, body="<html><body><h1>404 Not Found</h1></body></html>", content_type="text/html")
    sb.fail_next(200, body="OK", content_type="text/plain")
    sb.fail_next(301, body=b"", headers={"Location": "https://api.example/v1/shops/shop/orders"})
    fastapi, html, ok, moved = (http.put("/orders", json=order(str(n))) for n in range(4))
    assert (fastapi.status_code, fastapi.json()) == (404, {"detail": "Not Found"})
    assert html.status_code == 404 and html.headers["Content-Type"] == "text/html" and "<h1>" in html.text
    assert (ok.status_code, ok.text, ok.headers["Content-Type"]) == (200, "OK", "text/plain")
    assert moved.status_code == 301 and moved.headers["Location"].startswith("https://api.example/")
    assert sb.orders("shop") == {}  # a scripted answer stores nothing


def test_a_refused_order_fails_every_write_that_carries_it_and_only_those(sb: Sandbox, http: httpx.Client) -> None:
    sb.refuse_order("2", 409, "order_exists", "An order with that ID already exists")
    together = http.put("/orders/bulk", json=[order("1"), order("2"), order("3")])
    assert together.status_code == 409 and together.json() == {
        "key": "order_exists", "message": "An order with that ID already exists", "type": "invalid_request_error", "errors": [],
    }
    assert http.put("/orders/bulk", json=[order("1"), order("3")]).status_code == 200
    assert http.put("/orders", json=order("2")).status_code == 409
    assert set(sb.orders("shop")) == {"1", "3"}
