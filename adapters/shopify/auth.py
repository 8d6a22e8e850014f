"""The access token sent as ``X-Shopify-Access-Token``.

Either a configured token, or one from the client-credentials grant (apps from the Dev Dashboard, whose
tokens expire after about a day): fetched lazily, renewed shortly before ``expires_in`` runs out, and
once more when Shopify answers 401 anyway (revoked, rotated secret, clock skew).

A granted token is kept for the process (``_GRANTS``, keyed by shop URL, client id and a digest of the
secret), not per ``TokenSource``: the engine builds a new adapter, client and token source for every poll,
which asked for a new token 288 times a day at 5-minute polls.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from adapters.shopify.config import ShopifyConfig
from connector.errors import ConfigError, RetryableError
from connector.logs import register_token
from connector.retry import parse_retry_after

__all__ = ["Grant", "TokenSource", "forget_grants", "redact"]

TOKEN_HEADER = "X-Shopify-Access-Token"


def redact(headers: Any) -> dict[str, str]:
    """Headers safe to log: the token is replaced, whatever its case."""
    return {k: ("<redacted>" if k.lower() == TOKEN_HEADER.lower() else v) for k, v in dict(headers).items()}


@dataclass(slots=True)
class Grant:
    """A token and when to renew it; one per shop and app in the process when it comes from the grant."""

    token: str | None = None
    expires_at: float | None = None
    margin: float = 60.0
    lock: threading.Lock = field(default_factory=threading.Lock)  # one grant at a time per shop and app


_GRANTS: dict[tuple[str, str, str], Grant] = {}
_GRANTS_LOCK = threading.Lock()


def _shared_grant(config: ShopifyConfig) -> Grant:
    """The process's grant for this shop and app; a changed secret starts afresh (the digest, not the secret)."""
    secret = config.client_secret.get_secret_value() if config.client_secret else ""
    key = (config.base_url, str(config.client_id), hashlib.sha256(secret.encode()).hexdigest())
    with _GRANTS_LOCK:
        return _GRANTS.setdefault(key, Grant())


class TokenSource:
    def __init__(
        self, config: ShopifyConfig, http: httpx.Client, *, monotonic: Callable[[], float], log: Any = None
    ) -> None:
        self.config, self.http, self.monotonic = config, http, monotonic
        self.log = log or logging.getLogger(__name__)
        static = config.access_token.get_secret_value() if config.access_token else None
        self._grant = _shared_grant(config) if self.can_refresh else Grant(token=static)
        if self._grant.token is None and static:
            self._grant.token = static
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenSource({self.config.shop_domain}, {'client credentials' if self.can_refresh else 'static token'})"

    @property
    def can_refresh(self) -> bool:
        return bool(self.config.client_id and self.config.client_secret)

    def token(self) -> str:
        """The token for the next request, renewed first when it is about to expire."""
        grant = self._grant
        if grant.token and not self._expiring():
            return grant.token
        if not self.can_refresh:
            assert grant.token is not None  # the config guarantees a token or client credentials
            return grant.token
        with grant.lock:  # another source of this shop may have renewed it meanwhile
            if grant.token and not self._expiring():
                return grant.token
            return self.refresh()

    def _expiring(self) -> bool:
        grant = self._grant
        return grant.expires_at is not None and self.monotonic() >= grant.expires_at - grant.margin

    def refused(self) -> ConfigError:
        """The error for a 401 that a fresh token did not cure: it names the credential to fix."""
        what = "client_id/client_secret (the app may be uninstalled)" if self.can_refresh else "access_token"
        return ConfigError(f"Shopify {self.config.shop_domain} refused the access token (401): check {what}")

    def refresh(self) -> str:
        """Client-credentials grant: ``POST /admin/oauth/access_token``."""
        if not self.can_refresh:
            raise self.refused()
        assert self.config.client_secret is not None
        response = self.http.post(
            "/admin/oauth/access_token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret.get_secret_value(),
            },
        )
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RetryableError(f"Shopify token endpoint answered {status}", retry_after=retry_after, status=status)
        if status != 200:
            raise ConfigError(
                f"Shopify {self.config.shop_domain} refused the client-credentials grant ({status}): "
                f"check client_id {self.config.client_id!r} and client_secret"
            )
        return self._remember(response.json())

    def _remember(self, body: dict[str, Any]) -> str:
        token = body.get("access_token")
        if not token:
            raise ConfigError(f"Shopify {self.config.shop_domain}: the token endpoint returned no access_token")
        lifetime = float(body["expires_in"]) if body.get("expires_in") else None
        grant = self._grant
        register_token(f"shopify {self.config.shop_domain} {self.config.client_id}", str(token))  # echoed, masked
        grant.expires_at = self.monotonic() + lifetime if lifetime else None
        grant.margin = min(300.0, max(1.0, lifetime * 0.1)) if lifetime else 60.0
        grant.token = str(token)
        self.refreshes += 1
        self.log.info("Shopify %s: obtained an access token (expires in %s s)", self.config.shop_domain, lifetime or "?")
        return grant.token


def forget_grants() -> None:
    """Drop every kept token (tests: each fake shop issues its own)."""
    with _GRANTS_LOCK:
        _GRANTS.clear()
