"""The access token sent as ``X-Shopify-Access-Token``.

Either a configured token, or one from the client-credentials grant (apps from the Dev Dashboard, whose
tokens expire after about a day): fetched lazily, renewed shortly before ``expires_in`` runs out, and
once more when Shopify answers 401 anyway (revoked, rotated secret, clock skew).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from adapters.shopify.config import ShopifyConfig
from connector.errors import ConfigError, RetryableError
from connector.logs import register_token
from connector.retry import parse_retry_after

__all__ = ["TokenSource", "redact"]

TOKEN_HEADER = "X-Shopify-Access-Token"


def redact(headers: Any) -> dict[str, str]:
    """Headers safe to log: the token is replaced, whatever its case."""
    return {k: ("<redacted>" if k.lower() == TOKEN_HEADER.lower() else v) for k, v in dict(headers).items()}


class TokenSource:
    def __init__(
        self, config: ShopifyConfig, http: httpx.Client, *, monotonic: Callable[[], float], log: Any = None
    ) -> None:
        self.config, self.http, self.monotonic = config, http, monotonic
        self.log = log or logging.getLogger(__name__)
        self._token = config.access_token.get_secret_value() if config.access_token else None
        self._expires_at: float | None = None
        self._margin = 60.0
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenSource({self.config.shop_domain}, {'client credentials' if self.can_refresh else 'static token'})"

    @property
    def can_refresh(self) -> bool:
        return bool(self.config.client_id and self.config.client_secret)

    def token(self) -> str:
        """The token for the next request, renewed first when it is about to expire."""
        if self._token and not self._expiring():
            return self._token
        if self.can_refresh:
            return self.refresh()
        assert self._token is not None  # the config guarantees a token or client credentials
        return self._token

    def _expiring(self) -> bool:
        return self._expires_at is not None and self.monotonic() >= self._expires_at - self._margin

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
        self._token = str(token)
        register_token(f"shopify {self.config.shop_domain} {self.config.client_id}", self._token)  # echoed, masked
        self._expires_at = self.monotonic() + lifetime if lifetime else None
        self._margin = min(300.0, max(1.0, lifetime * 0.1)) if lifetime else 60.0
        self.refreshes += 1
        self.log.info("Shopify %s: obtained an access token (expires in %s s)", self.config.shop_domain, lifetime or "?")
        return self._token
