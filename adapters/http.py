"""HTTP helpers an adapter author should not rewrite: a client with the engine's retry policy and status
table, and paginators that refuse to loop forever.

    http = SourceHttp("https://erp.example.com/api", headers={"Authorization": f"Bearer {token}"}, what="ERP")
    for rows in page_numbers(lambda page: http.get_json("/orders", params={"page": page, "limit": 100}), limit=100):
        ...
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from connector.errors import Action, ConfigError, RetryableError, action_for_status
from connector.logs import clip
from connector.loopback import is_loopback, loopback_direct
from connector.retry import RetryPolicy, call_with_retries, make_retrying, parse_retry_after

__all__ = [
    "PaginationLoop", "SourceHttp", "cursor_pages", "has_userinfo", "link_header_pages", "page_numbers", "safe_scheme",
]


class PaginationLoop(RuntimeError):
    """The server handed out a page token it had already given: stop instead of reading forever."""


class SourceHttp:
    """httpx.Client + the retry policy + the status table. ``what`` names the source in messages."""

    def __init__(
        self,
        base_url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
        policy: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
        verify: bool = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        abort: threading.Event | None = None,
    ) -> None:
        self.what, self.abort = what, abort
        self.client = httpx.Client(base_url=base_url, headers=headers, auth=auth, timeout=timeout, verify=verify,
                                   transport=transport, mounts=loopback_direct(base_url))
        self.retrying = make_retrying(policy, sleep=sleep)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        def attempt() -> httpx.Response:
            return self.classify(self.client.request(method, url, **kwargs))

        return call_with_retries(self.retrying, attempt, self.what, abort=self.abort)  # type: ignore[return-value]

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs).json()

    def post_json(self, url: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", url, json=body, **kwargs).json()

    def classify(self, response: httpx.Response) -> httpx.Response:
        """Override to special-case a source's statuses; the default is the engine's table."""
        action = action_for_status(response.status_code)
        if action is Action.OK:
            return response
        detail = f"{self.what} answered {response.status_code} for {response.request.method} {response.request.url.path}: {clip(response.text, 300)}"
        if action is Action.RETRY:
            raise RetryableError(detail, retry_after=parse_retry_after(response.headers.get("Retry-After")), status=response.status_code)
        # Anything else a source refuses (a wrong URL, credentials or query; 413/422 for our own request)
        # needs a human: the source stops with everything committed so far. A record the adapter cannot
        # use is a ``Rejected`` in its page, never an exception.
        raise ConfigError(detail)

    def close(self) -> None:
        self.client.close()


def cursor_pages(fetch: Callable[[str | None], tuple[Sequence[Any], str | None]], start: str | None = None) -> Iterator[Sequence[Any]]:
    """Token pagination (GraphQL ``pageInfo.endCursor``, JSON ``next_cursor``): ``fetch(token) -> (items, next)``."""
    token, seen = start, set()
    while True:
        items, following = fetch(token)
        yield items
        if not following:
            return
        if following in seen:
            raise PaginationLoop(f"page token {following!r} repeated")
        seen.add(following)
        token = following


def page_numbers(fetch: Callable[[int], Sequence[Any]], *, limit: int, first: int = 1) -> Iterator[Sequence[Any]]:
    """page/limit pagination: stops on a short page; a page equal to the one before is a loop (a server
    that ignores the page parameter would otherwise be read forever)."""
    page, previous = first, None
    while True:
        items = fetch(page)
        if items and previous is not None and list(items) == list(previous):
            raise PaginationLoop(f"page {page} repeats page {page - 1}: does the server ignore the page parameter?")
        yield items
        if len(items) < limit:
            return
        previous, page = items, page + 1


def link_header_pages(http: SourceHttp, url: str, **kwargs: Any) -> Iterator[httpx.Response]:
    """RFC 8288 ``Link: <...>; rel="next"``: later pages take only the next URL (it carries its own query).

    The client's headers (a token) go with every page, so a next link must stay on the first request's
    scheme, host and port: one to http:// or another host is refused (``ConfigError``), not followed."""
    seen: set[str] = set()
    response = http.request("GET", url, **kwargs)
    origin = response.request.url
    while True:
        yield response
        following = response.links.get("next", {}).get("url")
        if not following:
            return
        if following in seen:
            raise PaginationLoop(f"next link {following!r} repeated")
        seen.add(following)
        target = response.request.url.join(following)  # a relative link is relative to the page it came with
        if _origin(target) != _origin(origin):
            raise ConfigError(
                f"{http.what}: the next-page link of {_shown(response.request.url)} points to {_shown(target)}, another "
                f"scheme, host or port: not followed, so the credentials are not sent there. Make the server build its "
                f"links with {_origin_text(origin)} (behind a TLS-terminating proxy: its forwarded-proto/host setting)"
            )
        response = http.request("GET", str(target))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port, with the scheme's default port filled in (https://h and https://h:443 match)."""
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _origin_text(url: httpx.URL) -> str:
    return str(url.copy_with(path="/", query=None, fragment=None)).rstrip("/")


def _shown(url: httpx.URL) -> str:
    """A URL for a message: without its query, which may carry a signature or a token."""
    return str(url.copy_with(query=None, fragment=None))


def safe_scheme(url: str) -> bool:
    """Whether credentials may be sent to ``url``: https, or plain http to a loopback host (a local test
    server, a TLS-terminating tunnel on this machine), where nothing crosses a network. For a Config's
    validator: an ``http://`` URL elsewhere would carry a token or secret in clear text."""
    parts = urlsplit(url.strip())
    if parts.scheme == "https":
        return True
    if parts.scheme != "http" or parts.hostname is None:
        return False
    return is_loopback(parts.hostname)


def has_userinfo(url: str) -> bool:
    """Whether ``url`` carries ``user:password@``: a Config's validator refuses it, since the URL is named in
    messages and logs (a password in it would be shown everywhere) and credentials have options of their own."""
    parts = urlsplit(url.strip())
    return parts.username is not None or parts.password is not None
