"""The retry policy: Retry-After in both forms, bounded attempts, fatal errors never retried."""

from __future__ import annotations

import random

import pytest

from connector.errors import ConfigError, RetryableError, Unavailable
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
