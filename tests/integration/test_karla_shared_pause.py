"""A Retry-After pauses every sender of a Karla client, not only the request it answered (Karla limits
the account's bulk operations, and with max_in_flight > 1 the other senders would keep sending).

Real sandbox on loopback; the pause runs on an injected clock, except where ``abort`` must end a real wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from connector.app import Connector
from connector.errors import Aborted, Unavailable
from connector.karla.client import KarlaClient
from connector.sandbox import Faults
from connector.settings import KarlaSettings, load_settings
from tests.conftest import API_KEY, SLUG, write_config, write_orders


def order(number: int) -> dict[str, Any]:
    return {"id": str(number), "order": {"order_number": str(number), "address": {"zip_code": "10119", "country_code": "DE"}}, "trackings": []}


def settings(url: str, **kwargs: Any) -> KarlaSettings:
    return KarlaSettings(base_url=url, shop_slug=SLUG, api_key=API_KEY, **kwargs)


def puts(sandbox) -> list[tuple[str, int]]:
    return [(r.path, r.status) for r in sandbox.requests if r.method == "PUT"]


class Clock:
    """A test clock: ``sleep`` records who slept how long and moves time on. The thread named ``hold``
    blocks in its sleep until ``release`` is set: a sender still waiting out its Retry-After."""

    def __init__(self, hold: str) -> None:
        self.now, self.slept, self.hold = 1000.0, [], hold
        self.holding, self.release = threading.Event(), threading.Event()
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        name = threading.current_thread().name
        with self.lock:
            self.slept.append((name, round(seconds, 3)))
        if name == self.hold:
            self.holding.set()
            assert self.release.wait(10)
        with self.lock:
            self.now += seconds


def test_another_sender_waits_out_the_retry_after_one_sender_got(sandbox) -> None:
    clock = Clock(hold="first")
    client = KarlaClient(settings(sandbox.url), sleep=clock.sleep, clock=clock)
    sandbox.fail_next(429, retry_after=30)
    first = threading.Thread(target=client.bulk_upsert, args=(SLUG, [order(1)]), name="first")
    first.start()
    assert clock.holding.wait(10)  # "first" got the 429 and waits out its 30 s
    client.bulk_upsert(SLUG, [order(2)])  # a second sender meanwhile: it must wait too, not send at once
    assert clock.slept == [("first", 30.0), ("MainThread", 30.0)]
    clock.release.set()
    first.join(10)
    assert not first.is_alive()
    assert puts(sandbox) == [(f"/v1/shops/{SLUG}/orders/bulk", 429), (f"/v1/shops/{SLUG}/orders/bulk", 200),
                             (f"/v1/shops/{SLUG}/orders/bulk", 200)]
    assert clock.slept == [("first", 30.0), ("MainThread", 30.0)]  # "first" did not wait its pause twice
    assert sorted(sandbox.orders(SLUG)) == ["1", "2"]


def test_a_pause_over_is_not_waited_again(sandbox) -> None:
    clock = Clock(hold="nobody")
    client = KarlaClient(settings(sandbox.url), sleep=clock.sleep, clock=clock)
    sandbox.fail_next(429, retry_after=5)
    client.bulk_upsert(SLUG, [order(1)])
    client.bulk_upsert(SLUG, [order(2)])
    assert clock.slept == [("MainThread", 5.0)] and [s for _, s in puts(sandbox)] == [429, 200, 200]


def test_the_pause_after_a_call_gave_up_holds_the_next_call_and_abort_ends_it(sandbox) -> None:
    """Real time: the next call waits for Karla's 30 s; ``abort`` (a shutdown) ends that wait at once."""
    at_pause = threading.Event()

    def clock() -> float:  # real time; tells the test when the second call looks at the pause
        if threading.current_thread().name == "second":
            at_pause.set()
        return time.monotonic()

    client = KarlaClient(settings(sandbox.url, retry_attempts=1), clock=clock)
    sandbox.fail_next(429, retry_after=30)
    with pytest.raises(Unavailable):
        client.bulk_upsert(SLUG, [order(1)])
    failed: list[BaseException] = []

    def send() -> None:
        try:
            client.bulk_upsert(SLUG, [order(2)])
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failed.append(exc)

    second = threading.Thread(target=send, name="second")
    started = time.monotonic()
    second.start()
    assert at_pause.wait(10)
    client.abort()
    second.join(10)
    assert not second.is_alive() and time.monotonic() - started < 10
    assert len(failed) == 1 and isinstance(failed[0], Aborted), failed
    assert [s for _, s in puts(sandbox)] == [429]  # the second order was never sent


def test_a_503_is_retried_at_once_through_the_pause_so_an_outage_still_ends_the_drain(tmp_path: Path, sandbox) -> None:
    """Real time. Karla answers 503 to one call and 429 "in 30 s" to the others, then only 503s: the 503's
    retry does not wait out the 30 s, gives up, and ends the drain (the others' waits too) within seconds.
    A third call's first attempt may be held by the pause and never sent: 3 or 4 writes."""
    config = write_config(tmp_path, sandbox.url, karla={"bulk_max_orders": 2, "max_in_flight": 3, "retry_attempts": 2})
    write_orders(tmp_path / "files", "orders_001.csv", list(range(1, 9)))
    connector = Connector(load_settings(config))
    assert connector.sync(deliver=False).exit_code == 0
    sandbox.fail_next(503)
    sandbox.fail_next(429, count=2, retry_after=30)
    sandbox.faults = Faults(error_rate=1.0, error_statuses=(503,))
    started = time.monotonic()
    with pytest.raises(Unavailable, match="unavailable after retries") as caught:
        connector.deliver()
    assert time.monotonic() - started < 10 and not isinstance(caught.value, Aborted)
    assert sorted(s for _, s in puts(sandbox)) in ([429, 429, 503], [429, 429, 503, 503])
    assert connector.status()["pending"] == 8
