"""SDK helpers: normalisers, paginators, and SourceHttp's status table against a real loopback server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters.http import PaginationLoop, SourceHttp, cursor_pages, link_header_pages, page_numbers
from adapters.normalise import country_code, money, parse_datetime
from connector.errors import ConfigError, Unavailable
from connector.retry import RetryPolicy


@pytest.mark.parametrize(
    ("text", "comma", "expected"),
    [("1.234,50 €", None, 1234.5), ("$1,234.50", None, 1234.5), ("12,5", None, 12.5), ("12.50", None, 12.5),
     ("1,234", True, 1.234), ("1.234", True, 1234.0), ("1,234", False, 1234.0), ("19.990", True, 19990.0), ("", None, None),
     ("12.5000", None, 12.5), ("1,2345", None, 1.2345), ("0.125", None, 0.125), ("-0,125", None, -0.125), (".5", None, 0.5),
     ("1.234.567", None, 1234567.0), ("1,234,567", None, 1234567.0), ("1.234.567,89", None, 1234567.89),
     ("1 234,56", None, 1234.56), ("1\u00a0234,56 €", None, 1234.56), ("CHF 1'234.50", None, 1234.5), ("1’234", None, 1234.0),
     ("1 234,567", None, 1234.567), ("(5.00)", None, -5.0), ("(€ 5,00)", None, -5.0), ("EUR -12,50", None, -12.5),
     ("-€5", None, -5.0), ("1.234,56-", None, -1234.56), ("US$12", None, 12.0), ("12.50 EUR", None, 12.5),
     ("12,5", False, 12.5), ("0.125", True, 0.125)],  # decimal_comma only settles what is ambiguous
)
def test_money(text: str, comma: bool | None, expected: float | None) -> None:
    assert money(text, decimal_comma=comma) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [("1,234", "ambiguous, 1234 or 1.234"), ("19.990", "ambiguous"), ("2.000", "ambiguous"), ("-1,500", "ambiguous"),
     ("1e3", "letters inside"), ("12x5", "letters inside"), ("1,23,456", "three digits"), ("1.23,5", "three digits"),
     ("12 50", "three digits"), ("1.234.5", "three digits"), ("1,234.5,6", "more than once"), ("12%", "not a currency"),
     ("12e", "not a currency"), ("- 5-", "more than one sign"), ("(-5)", "more than one sign"), ("zwei", "is not a number"),
     ("nan", "is not a number"), ("1,5 000", "digits may follow")],
)
def test_money_refuses_what_it_cannot_read_for_sure(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        money(text)
    assert str(info.value).startswith(f"{text!r} is not a number")


def test_dates_and_countries() -> None:
    assert parse_datetime("24.12.2026 18:30") == datetime(2026, 12, 24, 18, 30, tzinfo=timezone.utc)
    assert parse_datetime("2026-11-20T09:15:00+01:00").utcoffset().total_seconds() == 3600  # type: ignore[union-attr]
    assert parse_datetime("2026-11-20").tzinfo is timezone.utc
    with pytest.raises(ValueError, match="not a date"):
        parse_datetime("yesterday")
    assert country_code("Österreich") == "AT" and country_code("de") == "DE" and country_code("Atlantis") is None


def test_paginators_stop_and_detect_loops() -> None:
    pages = {None: ([1, 2], "a"), "a": ([3], "b"), "b": ([], None)}
    assert [list(p) for p in cursor_pages(lambda t: pages[t])] == [[1, 2], [3], []]
    with pytest.raises(PaginationLoop):
        list(cursor_pages(lambda t: ([1], "same")))
    assert [list(p) for p in page_numbers(lambda n: [n] * (2 if n < 3 else 1), limit=2)] == [[1, 1], [2, 2], [3]]
    with pytest.raises(PaginationLoop, match="page 2 repeats page 1"):  # a server that ignores ?page=
        list(page_numbers(lambda n: ["a", "b"], limit=2))


class _Handler(BaseHTTPRequestHandler):
    calls: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        self.calls.append(self.path)
        port = self.server.server_address[1]
        if self.path.startswith("/flaky") and self.calls.count(self.path) < 2:
            self._send(503, b"busy", {"Retry-After": "0"})
        elif self.path == "/denied":
            self._send(401, b"no")
        elif self.path == "/refused":
            self._send(422, b'{"error": "unknown filter"}')
        elif self.path == "/list?page=1":
            self._send(200, b"[1]", {"Link": f'<http://127.0.0.1:{port}/list?page=2>; rel="next"'})
        else:
            self._send(200, b"[2]")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_source_http_retries_classifies_and_follows_links(server: str) -> None:
    pauses: list[float] = []
    http = SourceHttp(server, what="ERP", policy=RetryPolicy(attempts=3), sleep=pauses.append)
    assert http.get_json("/flaky") == [2] and len(pauses) == 1
    with pytest.raises(ConfigError, match="ERP answered 401"):
        http.get_json("/denied")
    with pytest.raises(ConfigError, match="ERP answered 422 .*unknown filter"):  # our query: a human must act
        http.get_json("/refused")
    assert [r.json() for r in link_header_pages(http, "/list?page=1")] == [[1], [2]]
    quick = SourceHttp(server, what="ERP", policy=RetryPolicy(attempts=1), sleep=pauses.append)
    with pytest.raises(Unavailable, match="ERP unavailable"):
        quick.get_json("/flaky-again")
