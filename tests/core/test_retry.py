"""The retry policy: Retry-After in both forms, bounded attempts, fatal errors never retried, abort."""

from __future__ import annotations

import random
import threading
import time

import pytest

from connector.errors import Aborted, ConfigError, RetryableError, Unavailable
from connector.retry import RetryPolicy, call_with_retries, make_retrying, parse_retry_after


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=lambda: 1792567670.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_waits_at_least_retry_after_and_gives_up_after_attempts() -> None:
    pauses: list[float] = []
    retrying = make_retrying(RetryPolicy(attempts=3, initial=0.01), sleep=pauses.append, rng=random.Random(1))
    calls = []

    def flaky() -> None:
        calls.append(1)
        raise RetryableError("429", retry_after=5.0)

    with pytest.raises(Unavailable, match="Karla API unavailable after retries"):
        call_with_retries(retrying, flaky, "Karla API")
    assert len(calls) == 3 and len(pauses) == 2 and all(p >= 5.0 for p in pauses)


def test_backoff_is_jittered_and_capped() -> None:
    pauses: list[float] = []
    retrying = make_retrying(RetryPolicy(attempts=8, initial=1.0, max_wait=4.0), sleep=pauses.append, rng=random.Random(3))
    with pytest.raises(Unavailable):
        call_with_retries(retrying, lambda: (_ for _ in ()).throw(RetryableError("503")), "x")
    assert all(0 <= p <= 4.0 for p in pauses) and len(set(pauses)) > 1


def test_fatal_errors_are_not_retried() -> None:
    pauses: list[float] = []
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ConfigError("bad key")

    with pytest.raises(ConfigError):
        call_with_retries(make_retrying(RetryPolicy(), sleep=pauses.append), broken, "x")
    assert calls == [1] and pauses == []


def test_a_set_abort_sends_nothing() -> None:
    calls = []
    abort = threading.Event()
    abort.set()
    with pytest.raises(Aborted, match="not sent"):
        call_with_retries(make_retrying(RetryPolicy()), lambda: calls.append(1), "Karla API", abort=abort)
    assert calls == []


def test_abort_wakes_a_retry_pause_and_no_attempt_follows() -> None:
    """Real time: the server asked for 30 s; setting the event from another thread ends the pause at once."""
    abort, attempted = threading.Event(), threading.Event()
    calls = []

    def busy() -> None:
        calls.append(1)
        attempted.set()
        raise RetryableError("429", retry_after=30.0)

    helper = threading.Thread(target=lambda: attempted.wait(10) and abort.set())
    helper.start()
    started = time.monotonic()
    with pytest.raises(Aborted, match="retrying stopped on request .*429") as caught:
        call_with_retries(make_retrying(RetryPolicy(attempts=5)), busy, "Karla API", abort=abort)
    helper.join()
    assert time.monotonic() - started < 10 and calls == [1]
    assert isinstance(caught.value, Unavailable)  # nothing lost: callers keep the work pending


def test_an_unset_abort_changes_nothing() -> None:
    pauses: list[float] = []
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RetryableError("503")
        return "done"

    retrying = make_retrying(RetryPolicy(attempts=3), sleep=pauses.append)
    assert call_with_retries(retrying, flaky, "x", abort=threading.Event()) == "done"
    assert len(calls) == 3 and len(pauses) == 2  # the injected clock is still used


def test_a_retry_after_longer_than_a_backoff_pause_is_honoured_in_full() -> None:
    # It was cut to max_wait (60 s): the connector called again while Karla still rate-limited it.
    pauses: list[float] = []
    calls = []

    def limited() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RetryableError("429", retry_after=120.0)
        return "done"

    retrying = make_retrying(RetryPolicy(attempts=3, max_wait=60.0, max_seconds=300.0), sleep=pauses.append)
    assert call_with_retries(retrying, limited, "Karla API") == "done" and pauses == [120.0]


def test_a_retry_after_beyond_the_budget_ends_at_once_and_says_how_long_to_wait() -> None:
    pauses: list[float] = []
    calls = []

    def limited() -> None:
        calls.append(1)
        raise RetryableError("429", retry_after=3600.0)

    retrying = make_retrying(RetryPolicy(attempts=6, max_seconds=300.0), sleep=pauses.append)
    with pytest.raises(Unavailable) as caught:
        call_with_retries(retrying, limited, "Karla API")
    assert calls == [1] and pauses == [] and caught.value.retry_after == 3600.0
