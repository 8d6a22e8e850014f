"""Shopify Admin GraphQL over httpx: the token, cost-based pacing, and the engine's one retry policy.

What each answer means for the caller:

- ``THROTTLED`` (HTTP 200): the bucket model now knows the real state; the retry waits for the restore
  rate (pacing before every attempt makes that exact), so there is no hot loop.
- 429 honours ``Retry-After``; 5xx and transport errors back off under ``connector.retry``.
- 401: a client-credentials token is renewed once and the request repeated; a second 401, or a 401 on a
  static token, is a ``ConfigError`` naming the credential.
- 402 (frozen/unpaid shop), 403 (scope), 423 (locked), 404 (wrong domain/version): ``ConfigError``.
- Errors on nullable fields next to data (withheld protected customer data) come back as partial data
  with ``errors`` so the caller can warn; any other GraphQL error stops the run with its message.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from adapters.shopify.auth import TOKEN_HEADER, TokenSource, redact
from adapters.shopify.config import ShopifyConfig
from adapters.shopify.queries import SCOPES, SCOPES_COST
from adapters.shopify.throttle import shared_bucket
from connector.errors import ConfigError, FatalError, RetryableError
from connector.logs import clip
from connector.loopback import loopback_direct
from connector.retry import RetryPolicy, call_with_retries, make_retrying, parse_retry_after

__all__ = ["GraphQLResult", "QueryCostExceeded", "ShopifyClient", "Throttled"]

_ANNOUNCED: set[tuple[str, str]] = set()  # (shop, API version) said at INFO by this process
_FELL_FORWARD: set[tuple[str, str, str]] = set()  # (shop, answered, configured) warned about by this process
_OPERATION = re.compile(r"^\s*(?:query|mutation)\s+(\w+)")
_STATUS_MEANING = {
    402: "Payment Required: the shop is frozen or its plan is unpaid",
    403: "Forbidden: the app lacks a required scope or its access was revoked",
    404: "Not Found: check shop_domain and api_version",
    423: "Locked: the shop is locked (for example after repeated rate-limit abuse)",
}


class Throttled(RetryableError):
    """Shopify's cost bucket was empty; the next attempt waits for it to refill."""


class QueryCostExceeded(FatalError):
    """One query asked for more than Shopify's per-query ceiling; the caller asks for fewer items."""

    def __init__(self, message: str, requested: float | None) -> None:
        super().__init__(message)
        self.requested = requested


@dataclass(slots=True)
class GraphQLResult:
    data: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)


def operation_name(document: str) -> str:
    match = _OPERATION.match(document)
    return match.group(1) if match else "anonymous"


class ShopifyClient:
    def __init__(
        self,
        config: ShopifyConfig,
        *,
        log: Any = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        policy: RetryPolicy = RetryPolicy(),
        abort: threading.Event | None = None,
    ) -> None:
        self.config, self.sleep, self.abort = config, sleep, abort
        self.log = log or logging.getLogger(__name__)
        headers = {"User-Agent": "karla-connector"}
        self.http = httpx.Client(base_url=config.base_url, timeout=config.timeout_seconds, transport=transport, headers=headers,
                                 mounts=loopback_direct(config.base_url))
        self.tokens = TokenSource(config, self.http, monotonic=monotonic, log=self.log)
        self.bucket = shared_bucket(config.base_url, monotonic)
        self.retrying = make_retrying(policy, sleep=sleep)
        self.answered_version: str | None = None
        self.requests = 0
        self.throttled = 0

    def __repr__(self) -> str:
        return f"ShopifyClient({self.config.shop_domain}, api {self.config.api_version})"

    def close(self) -> None:
        self.http.close()

    # -- GraphQL -------------------------------------------------------------------------------------
    def query(self, document: str, variables: dict[str, Any] | None = None, *, cost: float | None = None) -> GraphQLResult:
        """Run one GraphQL document; transient failures are retried under the shared policy.

        ``cost``: the caller's estimate of the requested cost, used until Shopify has priced this query.
        """
        variables = variables or {}
        key = (document, variables.get("first"), len(variables.get("ids") or ()))
        what = f"Shopify {self.config.base_url} ({operation_name(document)})"  # the URL tried (api_base_url too)
        return call_with_retries(self.retrying, lambda: self._attempt(document, variables, key, cost), what, abort=self.abort)  # type: ignore[return-value]

    def data(self, document: str, variables: dict[str, Any] | None = None, *, cost: float | None = None) -> dict[str, Any]:
        return self.query(document, variables, cost=cost).data

    def served_version(self) -> str:
        """The version Shopify really executes: an unsupported pin "falls forward" to the oldest supported
        one, whose defaults (e.g. bulk ``groupObjects``) differ. Asks once, cheaply, if nothing answered yet."""
        if self.answered_version is None:
            self.data(SCOPES, cost=SCOPES_COST)
        return self.answered_version or self.config.api_version

    def send_once(self, document: str, variables: dict[str, Any], *, timeout: float) -> GraphQLResult:
        """One attempt with a short timeout: no retry, no pacing wait, and sent even once ``abort`` is set.

        For clean-up that a shutdown itself triggers (cancelling a bulk operation): ``query`` refuses to
        start anything after ``abort``, which would leave the operation running and block the next one.
        """
        response = self._post(document, variables, self.tokens.token(), timeout=timeout)
        return self._interpret(response, (document, None, 0))

    def _attempt(self, document: str, variables: dict[str, Any], key: Hashable, cost: float | None) -> GraphQLResult:
        self._pace(key, cost)
        response = self._post(document, variables, self.tokens.token())
        if response.status_code == 401 and self.tokens.can_refresh:
            self.log.info("Shopify %s answered 401: renewing the access token once", self.config.shop_domain)
            response = self._post(document, variables, self.tokens.refresh())
        if response.status_code == 401:
            raise self.tokens.refused()
        return self._interpret(response, key)

    def _pace(self, key: Hashable, estimate: float | None) -> None:
        expected = self.bucket.expected_cost(key, estimate)
        wait = self.bucket.wait_for(expected)
        if wait > 0:
            self.log.debug("Shopify cost bucket low: waiting %.2fs for %.0f points", wait, expected)
            self.sleep(wait)

    def _post(self, document: str, variables: dict[str, Any], token: str, *, timeout: float | None = None) -> httpx.Response:
        self.requests += 1
        headers = {TOKEN_HEADER: token}
        self.log.debug(
            "POST %s %s variables=%s headers=%s",
            self.config.graphql_path, operation_name(document), _short(variables), redact(headers),
        )
        body = {"query": document, "variables": variables}
        if timeout is None:
            return self.http.post(self.config.graphql_path, json=body, headers=headers)
        return self.http.post(self.config.graphql_path, json=body, headers=headers, timeout=timeout)

    def _interpret(self, response: httpx.Response, key: Hashable) -> GraphQLResult:
        self._check_version(response.headers.get("X-Shopify-API-Version"))
        self._raise_for_status(response)
        try:
            body = response.json()
        except ValueError:
            raise RetryableError(f"Shopify {self.config.shop_domain} answered 200 without JSON") from None
        cost = (body.get("extensions") or {}).get("cost")
        self.bucket.observe(cost, key)
        errors = body.get("errors") or []
        if isinstance(errors, (str, dict)):  # REST-style {"errors": "..."} from a proxy or an old endpoint
            raise FatalError(f"Shopify {self.config.shop_domain} answered: {errors}")
        self._raise_for_errors(errors, body.get("data"), cost or {})
        return GraphQLResult(body["data"], errors)

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status == 200:
            return
        detail = f"Shopify {self.config.shop_domain} answered {status}"
        if status == 429 or status >= 500:
            raise RetryableError(detail, retry_after=parse_retry_after(response.headers.get("Retry-After")), status=status)
        meaning = _STATUS_MEANING.get(status) or clip(response.text, 200)  # masked, then cut
        raise ConfigError(f"{detail} {meaning}")

    def _raise_for_errors(self, errors: list[dict[str, Any]], data: Any, cost: dict[str, Any]) -> None:
        codes = {(e.get("extensions") or {}).get("code") for e in errors}
        requested = cost.get("requestedQueryCost")
        maximum = (cost.get("throttleStatus") or {}).get("maximumAvailable")
        if "THROTTLED" in codes and requested and maximum and float(requested) > float(maximum):
            raise QueryCostExceeded(f"Shopify's bucket holds {maximum} points, a query asked for {requested}", requested)
        if "THROTTLED" in codes:
            self.throttled += 1
            wait = self.bucket.wait_for(float(requested or 0))
            raise Throttled(f"Shopify {self.config.shop_domain} THROTTLED", retry_after=max(wait, 0.1))
        if "MAX_COST_EXCEEDED" in codes:
            raise QueryCostExceeded(f"Shopify refused a query costing {requested} points", requested)
        if "INTERNAL_SERVER_ERROR" in codes:
            raise RetryableError(f"Shopify {self.config.shop_domain} internal error: {_messages(errors)}")
        if data is None or (errors and any(value is None for value in data.values())):
            if "ACCESS_DENIED" in codes:
                raise ConfigError(f"Shopify {self.config.shop_domain} denied access: {_messages(errors)} (missing scope?)")
            raise FatalError(f"Shopify {self.config.shop_domain} rejected the query: {_messages(errors) or 'no data'}")

    def _check_version(self, answered: str | None) -> None:
        if not answered or answered == self.answered_version:
            return
        first = self.answered_version is None
        self.answered_version = answered
        fell = (self.config.shop_domain, answered, self.config.api_version)
        if answered != self.config.api_version:
            if fell not in _FELL_FORWARD:  # a client per poll: once a process, like the INFO below
                _FELL_FORWARD.add(fell)
                self.log.warning(
                    "Shopify %s answers with API version %s, not the configured %s (unsupported versions fall forward): "
                    "update api_version", self.config.shop_domain, answered, self.config.api_version,
                )
        elif first and (self.config.shop_domain, answered) not in _ANNOUNCED:  # a client per poll: once a process
            _ANNOUNCED.add((self.config.shop_domain, answered))
            self.log.info("Shopify %s: Admin API version %s", self.config.shop_domain, answered)

    # -- bulk results ----------------------------------------------------------------------------------
    def stream_lines(self, url: str) -> Iterator[str]:
        """A bulk result file, line by line. It lives on Shopify's storage: no token is sent there."""
        with self.http.stream("GET", url) as response:
            if response.status_code != 200:
                raise RetryableError(f"bulk result download answered {response.status_code}", status=response.status_code)
            yield from response.iter_lines()


def _messages(errors: list[dict[str, Any]]) -> str:
    return "; ".join(str(e.get("message")) for e in errors[:3])


def _short(variables: dict[str, Any]) -> dict[str, Any]:
    return {k: (f"<{len(v)} items>" if isinstance(v, list) and len(v) > 5 else v) for k, v in variables.items()}
