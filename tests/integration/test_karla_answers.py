"""What delivery does with each kind of Karla answer (connector.errors.action_for), against the real
sandbox over HTTP: a route-level 404 stops without dead-lettering, a 2xx is an acknowledgement whatever
its body, a record-level refusal dead-letters only that order, an unknown answer stops with a truthful
message, and an outage or a stop request cuts every retry in flight short."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from connector.app import Connector, ExitCode
from connector.errors import Aborted, ConfigError, FatalError, Unavailable
from connector.karla.client import KarlaClient
from connector.sandbox import Faults
from connector.settings import load_settings
from tests.conftest import SLUG, write_config, write_orders

ORDERS = [1, 2, 3, 4, 5, 6]


def queued(tmp_path: Path, url: str, numbers: list[int] = ORDERS, *, fake_clock: bool = True, **karla: object) -> Connector:
    """A connector whose outbox holds ``numbers``, nothing sent yet; ``fake_clock`` makes retry pauses instant."""
    config = write_config(tmp_path, url, karla=karla)
    write_orders(tmp_path / "files", "orders_001.csv", numbers)
    connector = Connector(load_settings(config), sleep=(lambda _: None) if fake_clock else time.sleep)
    assert connector.sync(deliver=False).exit_code == ExitCode.OK
    assert connector.status()["pending"] == len(numbers)
    return connector


def writes(sandbox) -> list[int]:
    return [r.status for r in sandbox.requests if r.method == "PUT"]


# -- 404/409 that name no record: the base URL or a proxy, not an order ---------------------------------
ROUTE_404 = {
    "fastapi": ({"detail": "Not Found"}, "application/json"),
    "proxy-html": ("<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center></body></html>", "text/html"),
    "unknown-key": ({"key": "not_found", "message": "No route", "type": "invalid_request_error", "errors": []}, "application/json"),
}


@pytest.mark.parametrize("kind", sorted(ROUTE_404))
def test_a_404_naming_no_record_stops_delivery_and_dead_letters_nothing(tmp_path: Path, sandbox, kind: str) -> None:
    body, content_type = ROUTE_404[kind]
    connector = queued(tmp_path, sandbox.url)
    sandbox.fail_next(404, body=body, content_type=content_type)
    with pytest.raises(ConfigError, match="404.*without naming a record: check \\[karla\\].base_url.*shop_slug"):
        connector.deliver()
    assert writes(sandbox) == [404]  # no bisecting down to single orders
    assert connector.status()["pending"] == len(ORDERS) and connector.status()["dead"] == 0
    assert connector.deliver().orders == len(ORDERS)  # once the route answers, everything goes


def test_a_wrong_base_path_is_a_config_error_not_a_dead_letter_per_order(tmp_path: Path, sandbox) -> None:
    """No injection: the sandbox's own answer for a path it has no route for."""
    connector = queued(tmp_path, f"{sandbox.url}/karla")
    with pytest.raises(ConfigError, match=f"404 not_found .*without naming a record.*now {sandbox.url}/karla"):
        connector.deliver()
    assert len(sandbox.requests) == 1 and connector.status()["dead"] == 0
    assert connector.status()["pending"] == len(ORDERS)


# -- 2xx is success whatever the body ------------------------------------------------------------------
@pytest.mark.parametrize(("body", "content_type"), [("OK", "text/plain"), (b"", "application/json")])
def test_a_2xx_with_a_body_that_is_not_json_is_an_acknowledgement(tmp_path: Path, sandbox, body: str | bytes, content_type: str) -> None:
    connector = queued(tmp_path, sandbox.url)
    sandbox.fail_next(200, body=body, content_type=content_type)
    result = connector.deliver()
    assert result.orders == len(ORDERS) and connector.status()["pending"] == 0
    assert connector.deliver().requests == 0 and writes(sandbox) == [200]  # never sent again


def test_a_2xx_web_page_is_not_taken_as_an_acknowledgement(tmp_path: Path, sandbox) -> None:
    """A site or login portal answering 200 with HTML must not mark orders delivered that never arrived."""
    connector = queued(tmp_path, sandbox.url)
    sandbox.fail_next(200, body="<!doctype html><html><body>Welcome</body></html>", content_type="text/html; charset=utf-8")
    with pytest.raises(ConfigError, match=r"answered 200 with a web page .*Welcome.*check \[karla\].base_url"):
        connector.deliver()
    assert connector.status()["pending"] == len(ORDERS) and connector.status()["dead"] == 0


# -- record-level refusals: only that order becomes a dead letter ---------------------------------------
@pytest.mark.parametrize(
    ("status", "key", "message"),
    [
        (409, "order_exists", "An order with that ID already exists"),
        (415, "image_media_unsupported", "Uploaded image format is not supported"),
        (404, "shipment_not_found", "The requested shipment was not found"),
        (400, "invalid_payload", "Request validation error"),
    ],
)
def test_a_keyed_record_refusal_dead_letters_only_that_order(tmp_path: Path, sandbox, status: int, key: str, message: str) -> None:
    connector = queued(tmp_path, sandbox.url)
    sandbox.refuse_order("4", status, key, message)
    result = connector.deliver()
    assert set(sandbox.orders(SLUG)) == {"1", "2", "3", "5", "6"} and result.orders == 5
    (reason,) = result.dead_letters
    assert reason == (f"Karla rejected order 4: {status} {key}: {message} "
                      "(fix it at the source and it is sent again, or fix it in Karla and `dlq retry` this letter)")
    assert connector.status()["pending"] == 0 and connector.status()["dead"] == 1


# -- unknown answers: stop, keep everything, say what happened -------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "says"),
    [
        (410, {"detail": "Gone"}, {}, FatalError, "410 \\(Gone\\) to PUT /v1/shops/test-shop/orders/bulk, which names no record"),
        (400, {"key": "klaviyo_key_missing_permissions", "message": "Klaviyo API key lacks required permissions"}, {},
         FatalError, "400 klaviyo_key_missing_permissions .*names no record"),
        (415, "Unsupported Media Type", {}, FatalError, "415 \\(Unsupported Media Type\\)"),
        (501, {"key": "service_not_implemented", "message": "The requested functionality is not yet implemented"}, {},
         FatalError, "501 service_not_implemented .*retrying cannot help.*every order stays pending"),
        (301, b"", {"Location": "https://api.gokarla.io/v1/shops/test-shop/orders/bulk"}, ConfigError,
         "301 to PUT .*redirecting to https://api.gokarla.io/.*check \\[karla\\].base_url"),
    ],
)
def test_an_unknown_answer_stops_with_a_truthful_message_and_loses_nothing(
    tmp_path: Path, sandbox, status: int, body: object, headers: dict, error: type, says: str
) -> None:
    connector = queued(tmp_path, sandbox.url)
    sandbox.fail_next(status, body=body, content_type="text/plain" if isinstance(body, str) else "application/json", headers=headers)
    with pytest.raises(error, match=says) as caught:
        connector.deliver()
    assert "[karla].api_key" not in str(caught.value) and "refused" not in str(caught.value)  # not blamed on the key
    assert writes(sandbox) == [status] and connector.status()["pending"] == len(ORDERS) and connector.status()["dead"] == 0


@pytest.mark.parametrize(
    ("status", "key", "says"),
    [
        (400, "invalid_merchant_or_key", "credentials missing or malformed: check \\[karla\\].username and \\[karla\\].api_key"),
        (401, "invalid_merchant_or_key", "API key was refused .*\\[karla\\].api_key"),
        (403, "insufficient_rights", "lacks rights .*editor or admin role"),
        (403, "permission_denied", "lacks rights .*editor or admin role"),
        (404, "shop_not_found", "shop does not exist: check \\[karla\\].shop_slug"),
    ],
)
def test_auth_keys_stop_delivery_naming_the_credential(tmp_path: Path, sandbox, status: int, key: str, says: str) -> None:
    connector = queued(tmp_path, sandbox.url)
    sandbox.fail_next(status, body={"key": key, "message": "from Karla", "type": "invalid_request_error", "errors": []})
    with pytest.raises(ConfigError, match=says):
        connector.deliver()
    assert writes(sandbox) == [status] and connector.status()["dead"] == 0


# -- outages and shutdowns cut retries short -------------------------------------------------------------
def test_the_first_batch_that_gives_up_cuts_the_retries_of_the_others(tmp_path: Path, sandbox) -> None:
    """Three calls in flight on a real clock: one gets a 503 and gives up after its short backoff, the two
    others were told to come back in 30 s. They stop waiting at once and the queued fourth is not sent."""
    connector = queued(tmp_path, sandbox.url, list(range(1, 9)), fake_clock=False, bulk_max_orders=2, max_in_flight=3, retry_attempts=2)
    sandbox.fail_next(503)
    sandbox.fail_next(429, count=2, retry_after=30)
    sandbox.faults = Faults(error_rate=1.0, error_statuses=(503,))
    started = time.monotonic()
    # Which call gets which scripted answer depends on the order they reach the sandbox, so which one's
    # failure is reported first does too (a clean-clone run got the 429's): either is Karla's outage.
    with pytest.raises(Unavailable, match="unavailable after retries: Karla bulk: (503|429)") as caught:
        connector.deliver()
    assert time.monotonic() - started < 10
    assert not isinstance(caught.value, Aborted)  # the reason given is Karla's outage, not the cut
    # 3 first attempts + the one retry, nothing else; a first attempt made after a 429 waits out its pause
    # (shared by every call in flight) and is cut unsent
    assert sorted(writes(sandbox)) in ([429, 429, 503], [429, 429, 503, 503])
    assert connector.status()["pending"] == 8 and connector.status()["dead"] == 0


def test_a_stop_during_an_outage_ends_the_drain_at_once_with_everything_pending(tmp_path: Path, sandbox) -> None:
    """Karla asks every call to come back in 30 s; a shutdown asked for once the first answer is in must
    not wait any of that out (the daemon has 30 s of grace, systemd 45 s)."""
    connector = queued(tmp_path, sandbox.url, list(range(1, 13)), fake_clock=False, bulk_max_orders=2, max_in_flight=3, retry_attempts=6)
    sandbox.faults = Faults(rate_limit_rate=1.0, retry_after=30)
    started = time.monotonic()
    result = connector.deliver(stop=lambda: bool(sandbox.requests))
    assert time.monotonic() - started < 10
    assert result.orders == 0 and connector.status()["pending"] == 12
    assert 1 <= len(sandbox.requests) <= 3 and set(writes(sandbox)) == {429}  # no call retried after the stop
    sandbox.faults = Faults()
    assert connector.deliver().orders == 12


def test_client_abort_wakes_a_waiting_retry_and_refuses_further_calls(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 6})
    sandbox.faults = Faults(rate_limit_rate=1.0, retry_after=30)
    client = KarlaClient(load_settings(config).karla)
    helper = threading.Thread(target=lambda: sandbox.wait_for(lambda s: len(s.requests) >= 1, timeout=10) and client.abort())
    helper.start()
    started = time.monotonic()
    with pytest.raises(Aborted, match="retrying stopped on request .*429"):
        client.bulk_upsert_raw(SLUG, b'[{"id":"1","trackings":[]}]')
    helper.join()
    assert time.monotonic() - started < 10 and client.aborted
    with pytest.raises(Aborted, match="not sent"):
        client.bulk_upsert_raw(SLUG, b"[]", abort=threading.Event())  # a call's own event cannot undo it
    assert len(sandbox.requests) == 1
    client.close()


def test_a_slug_is_one_path_segment_whatever_it_holds(tmp_path: Path, sandbox) -> None:
    """A slash, '?' or '#' in a slug sent the request to another route (/v1/shops/a/b/orders/bulk, or
    /v1/shops/a with the rest as a query): it is percent-encoded into its own segment."""
    slug = "my/shop?#1"
    config = write_config(tmp_path, sandbox.url, source={"shop_slug": slug})
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    assert Connector(load_settings(config)).sync().exit_code == ExitCode.OK
    assert set(sandbox.orders(slug)) == {"1", "2"}
    assert {r.path for r in sandbox.requests if r.method == "PUT"} == {"/v1/shops/my%2Fshop%3F%231/orders/bulk"}
