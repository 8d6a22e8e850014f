"""Shopware Admin API client: auth, headers, retries, and the shop's clock.

- One OAuth token (client-credentials grant) per process, renewed at 80 % of its lifetime and once after a
  401. Never a token per call: the token endpoint is brute-force limited (429 FRAMEWORK__AUTH_THROTTLED).
- ``Accept: application/json`` and ``Content-Type: application/json`` on every call: with ``Accept: */*``
  (httpx's default) Shopware answers JSON:API, and without the JSON content type it silently ignores the
  criteria body and returns unfiltered rows.
- Retries (5xx, 408, 429 with Retry-After, transport errors) go through ``connector.retry``.
- Each response's ``Date`` header tells the shop's clock (see ``shop_now``).
- Redirects are not followed (the secret would go wherever a proxy points): a 3xx is a ConfigError naming
  the URL to use as base_url (http -> https, bare domain -> www).
- Answers a caller can act on get their own exceptions: ``LimitExceeded`` (lower the page size),
  ``UnknownField`` (a field this version names differently) and ``MissingPrivilege`` (a 403).
- A 401 or 403 that Shopware did not write (HTTP basic auth, a WAF) says so (``answers.gatekeeper``) instead
  of blaming the integration's credentials or privileges. Reading an answer lives in ``answers``.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from adapters.shopware.answers import (error_text, gatekeeper, json_body, max_limit, privileges, redirect_target, throttle,
                                      unmapped)
from adapters.shopware.config import ShopwareConfig
from connector.errors import ConfigError, FatalError, RetryableError
from connector.logs import register_token
from connector.loopback import loopback_direct
from connector.retry import RetryPolicy, call_with_retries, make_retrying, parse_retry_after, tls_verify

__all__ = ["LimitExceeded", "MissingPrivilege", "RouteNotFound", "ShopwareClient", "UnknownField"]

HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}
_CA_OPTION = "this source's ca_file"


class LimitExceeded(Exception):
    """400 FRAMEWORK__QUERY_LIMIT_EXCEEDED; ``max_limit`` is the shop's cap when the error names it."""

    def __init__(self, max_limit: int | None) -> None:
        super().__init__(f"page size above the shop's limit ({max_limit or 'unknown'})")
        self.max_limit = max_limit


class UnknownField(FatalError):
    """400 FRAMEWORK__UNMAPPED_FIELD: this Shopware version has no such field (``field``, last path part)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class MissingPrivilege(ConfigError):
    """403: the integration lacks a read privilege; a caller with a fallback may carry on without the data."""


class RouteNotFound(ConfigError):
    """404: a wrong base_url, or a route this Shopware version does not have."""


class ShopwareClient:
    def __init__(self, config: ShopwareConfig, *, clock: Callable[[], datetime], log: logging.Logger | logging.LoggerAdapter,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, abort: threading.Event | None = None) -> None:
        self.config, self.clock, self.log, self.monotonic, self.abort = config, clock, log, monotonic, abort
        self.http = httpx.Client(base_url=f"{config.base_url}/api", headers=HEADERS, timeout=config.timeout_seconds,
                                 verify=tls_verify(config.verify_tls, config.ca_file), transport=transport,
                                 mounts=loopback_direct(config.base_url))  # the secret never to http_proxy in clear
        if self.tls_warning:
            self.log.warning("%s", self.tls_warning)
        self.retrying = make_retrying(RetryPolicy(), sleep=sleep)
        self.once = make_retrying(RetryPolicy(attempts=1), sleep=sleep)  # probes: a failure is an answer, not a blip
        self._token: str | None = None
        self._renew_at = 0.0
        self.clock_offset: float | None = None  # shop clock minus local clock, seconds
        self.token_requests = 0

    def __repr__(self) -> str:
        return f"ShopwareClient({self.config.base_url!r}, client_id={self.config.client_id!r})"

    @property
    def who(self) -> str:
        return f"Shopware {self.config.base_url} (integration {self.config.client_id})"

    @property
    def tls_warning(self) -> str | None:
        """Said once per client, and by `check`: an unverified connection hands the client secret to whoever answers."""
        if self.config.verify_tls:
            return None
        host = httpx.URL(self.config.base_url).host
        return (f"Shopware: TLS certificate of {host} NOT verified (this source's verify_tls = false): anyone between "
                f"here and {host} can read the client secret and the orders; to trust a private or self-signed "
                "certificate, set the source's ca_file instead")

    # -- public calls --------------------------------------------------------------------------------
    def search(self, entity: str, criteria: dict[str, Any], *, once: bool = False) -> dict[str, Any]:
        return self.call("POST", f"/search/{entity}", criteria, once=once)

    def search_ids(self, entity: str, criteria: dict[str, Any], *, once: bool = False) -> list[str]:
        """The ids ``criteria`` select, without loading the entities (nothing a loaded row trips over runs)."""
        return [str(i) for i in self.call("POST", f"/search-ids/{entity}", criteria, once=once).get("data") or []]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *, once: bool = False) -> dict[str, Any]:
        """One API call with retries (``once``: a single attempt); raises ConfigError/FatalError/LimitExceeded,
        or Unavailable at the end."""
        retrying = self.once if once else self.retrying
        return call_with_retries(retrying, lambda: self._send(method, path, body), self.who, abort=self.abort,  # type: ignore[return-value]
                                 ca_option=_CA_OPTION)

    def ensure_token(self) -> None:
        call_with_retries(self.retrying, self.token, self.who, abort=self.abort, ca_option=_CA_OPTION)

    def shop_now(self) -> datetime:
        """The earlier of the local and the shop's clock.

        ``updatedAt`` is stamped by the shop's app servers, so a window must end before *their* now; a local
        clock running ahead would let the window end in the shop's future and rows stamped later, but below
        the end, would be missed. The ``Date`` header (whole seconds, rounded down) is the shop's clock, but
        a proxy may set it; taking the earlier of the two can only make the lag longer, never too short.
        """
        local = self.clock()
        if self.clock_offset is None:
            return local
        return local + timedelta(seconds=min(0.0, self.clock_offset))

    def close(self) -> None:
        self.http.close()

    # -- token ---------------------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None or self.monotonic() >= self._renew_at:
            self._fetch_token()
        assert self._token is not None
        return self._token

    def _fetch_token(self) -> None:
        self._token = None
        self.token_requests += 1
        body = {"grant_type": "client_credentials", "client_id": self.config.client_id,
                "client_secret": self.config.client_secret.get_secret_value()}
        response = self.http.post("/oauth/token", json=body)
        self._observe(response)
        self._refuse_redirect(response)
        status = response.status_code
        if status == 200:
            data = json_body(response)
            self._token = str(data["access_token"])
            register_token(f"shopware {self.config.base_url} {self.config.client_id}", self._token)  # echoed, masked
            self._renew_at = self.monotonic() + 0.8 * float(data.get("expires_in") or 600)
            return
        if status == 429:
            raise RetryableError(f"{self.who}: token requests throttled", retry_after=throttle(response), status=429)
        if status == 500 and "INVALID_ACCESS_KEY" in response.text:
            raise ConfigError(f"{self.who}: client_id is not an integration access key (expected SWIA...)")
        if status in (408, 425) or status >= 500:
            raise RetryableError(f"{self.who}: token endpoint answered {status}", status=status)
        if status == 404:
            raise ConfigError(f"{self.who}: no Admin API at {self.config.base_url}/api; check base_url")
        if blocked := gatekeeper(response):
            raise ConfigError(f"{self.who}: {blocked}")
        raise ConfigError(f"{self.who}: credentials refused ({status} {error_text(response)}); check client_id and client_secret")

    # -- requests ------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        response = self._request(method, path, body)
        if response.status_code == 401 and not gatekeeper(response):  # revoked or expired early: a fresh token, once
            self._token = None
            response = self._request(method, path, body)
            if response.status_code == 401 and not gatekeeper(response):
                raise ConfigError(f"{self.who}: a fresh token was refused (401); is the integration still active?")
        return self._parse(path, response)

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        response = self.http.request(method, path, json=body, headers=headers)
        self._observe(response)
        return response

    def _parse(self, path: str, response: httpx.Response) -> dict[str, Any]:
        self._refuse_redirect(response)
        status = response.status_code
        if status == 400 and "FRAMEWORK__QUERY_LIMIT_EXCEEDED" in response.text:
            raise LimitExceeded(max_limit(response))
        if status in (408, 425, 429) or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RetryableError(f"{self.who} answered {status} on {path}: {error_text(response)}", retry_after=retry_after,
                                 status=status)
        if blocked := gatekeeper(response):
            raise ConfigError(f"{self.who}: {blocked}")
        if status == 400 and (field := unmapped(response)):
            raise UnknownField(f"{self.who} has no field {field!r} ({path}): {error_text(response)}", field)
        if status == 403:
            raise MissingPrivilege(f"{self.who}: {privileges(response)}; give the integration read rights on orders")
        if status == 404:
            raise RouteNotFound(f"{self.who}: {path} not found; is base_url the shop's URL and Shopware 6.4 or later?")
        if status >= 400:
            raise FatalError(f"{self.who} refused {path}: {status} {error_text(response)}")
        kind = response.headers.get("Content-Type", "")
        if "vnd.api+json" in kind:
            raise FatalError(f"{self.who} answered JSON:API; something between us and the shop drops the Accept header")
        return json_body(response, self.who)

    def _refuse_redirect(self, response: httpx.Response) -> None:
        """A 3xx means base_url is not where the shop answers; left unexplained it reads as refused
        credentials (token endpoint) or as a non-JSON answer (data calls)."""
        if 300 <= response.status_code < 400:
            target = redirect_target(response)
            raise ConfigError(f"{self.who}: base_url redirects to {target} ({response.status_code}); use that as base_url")

    def _observe(self, response: httpx.Response) -> None:
        try:
            shop = email.utils.parsedate_to_datetime(response.headers["Date"])
        except (KeyError, TypeError, ValueError):
            return
        offset = shop.timestamp() - self.clock().timestamp()
        if abs(offset) > 120 and (self.clock_offset is None or abs(self.clock_offset) <= 120):
            self.log.warning("Shopware's clock differs from ours by %.0f s; windows follow the earlier clock", offset)
        self.clock_offset = offset

