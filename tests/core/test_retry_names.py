"""A retry's log line names what is retried: "retrying after [Errno 111] Connection refused" alone says neither
which API nor which source's server refused."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest

from connector.errors import RetryableError, Unavailable
from connector.retry import RetryPolicy, call_with_retries, make_retrying


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "connector.retry" and "retrying after" in r.getMessage()]


def test_a_refused_connection_is_retried_by_name(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port on this host nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    retrying = make_retrying(RetryPolicy(attempts=2), sleep=lambda _pause: None)
    with caplog.at_level(logging.INFO, logger="connector.retry"), pytest.raises(Unavailable):
        call_with_retries(retrying, lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=5), "Karla API")
    [line] = _retries(caplog)
    assert line.startswith("Karla API: retrying after ") and "attempt 1" in line


def test_a_message_that_names_it_already_is_not_named_twice(caplog: pytest.LogCaptureFixture) -> None:
    answers = iter([RetryableError("Shopware https://shop.example answered 503 on /api/search/order"), None])

    def flaky() -> str:
        if exc := next(answers):
            raise exc
        return "ok"

    retrying = make_retrying(RetryPolicy(attempts=2), sleep=lambda _pause: None)
    with caplog.at_level(logging.INFO, logger="connector.retry"):
        assert call_with_retries(retrying, flaky, "Shopware https://shop.example") == "ok"
        call_with_retries(retrying, lambda: "ok", "Shopify")  # the name is this call's only
    [line] = _retries(caplog)
    assert line.startswith("retrying after Shopware https://shop.example answered 503")
