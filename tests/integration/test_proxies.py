"""An environment proxy (``http_proxy``, ``HTTPS_PROXY``) never gets a request for this machine: plain http is
allowed only to loopback because nothing crosses a network, and through a proxy the API key or client secret
would travel in clear to the proxy's host. Every other host still goes through the proxy (a corporate network).

Found by review: with ``http_proxy`` set and no ``NO_PROXY``, a loopback Karla sandbox, Shopware or Shopify got
its credentials relayed through the proxy."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from adapters.http import SourceHttp
from adapters.shopify.client import ShopifyClient
from adapters.shopify.config import ShopifyConfig
from adapters.shopify.queries import SCOPES, SCOPES_COST
from adapters.shopware.client import ShopwareClient
from adapters.shopware.config import ShopwareConfig
from connector.errors import Unavailable
from connector.retry import RetryPolicy
from tests.conftest import API_KEY, cli, write_config
from tests.shopify.fake_server import FakeShopify
from tests.shopify.store import FakeClock
from tests.shopware.fake_server import FakeShopware

SHOPWARE_ID, SHOPWARE_SECRET = "SWIAFAKEINTEGRATION", "fake-secret-7d1e"


class EchoProxy:
    """A "proxy" on 127.0.0.1 that records every request it is handed (request line, headers, body) and
    answers 502, as a proxy that cannot reach the target would."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace") if length else ""
                proxy.seen.append(f"{self.requestline}\n{self.headers}\n{body}")
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_CONNECT = _record  # noqa: N815 - http.server's naming

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[EchoProxy]:
    """The proxy, set in this test's environment the way a merchant's shell sets it (no NO_PROXY)."""
    echo = EchoProxy()
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, echo.url)
    yield echo
    echo.close()


def test_karla_on_loopback_is_called_directly_not_through_the_proxy(tmp_path: Path, sandbox, proxy: EchoProxy) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 1})
    result = cli(config, "check")  # the subprocess inherits this test's http_proxy
    assert not proxy.seen, proxy.seen  # the Basic header (the API key) stays on this machine
    assert result.returncode == 0 and sandbox.requests, result.stdout + result.stderr


def test_shopware_on_loopback_gets_its_secret_directly(proxy: EchoProxy) -> None:
    shop = FakeShopware(lambda: datetime.now(timezone.utc)).start()
    try:
        config = ShopwareConfig(base_url=shop.url, client_id=SHOPWARE_ID, client_secret=SHOPWARE_SECRET, shop_slug="s")
        client = ShopwareClient(config, clock=shop.now, log=logging.getLogger("test"), sleep=lambda _: None)
        try:
            client.ensure_token()
        finally:
            client.close()
    finally:
        shop.stop()
    assert shop.token_requests == 1
    assert not proxy.seen, proxy.seen  # the client secret travels in the token request's body


def test_shopify_on_loopback_gets_its_token_directly(proxy: EchoProxy) -> None:
    clock = FakeClock()
    with FakeShopify(clock) as shop:
        config = ShopifyConfig(shop_domain=shop.domain, api_base_url=shop.url, access_token=shop.token)
        client = ShopifyClient(config, sleep=clock.sleep, monotonic=clock.monotonic)
        try:
            client.query(SCOPES, cost=SCOPES_COST)
        finally:
            client.close()
    assert not proxy.seen, proxy.seen


def test_an_adapters_source_http_on_loopback_bypasses_the_proxy(proxy: EchoProxy) -> None:
    target = EchoProxy()  # any server that records: here the real target on another port
    try:
        http = SourceHttp(target.url, what="ERP", headers={"Authorization": "Bearer ERP-TOKEN"}, policy=RetryPolicy(attempts=1))
        with pytest.raises(Unavailable):  # the target answers 502: only where the request went matters
            http.get_json("/orders")
        http.close()
    finally:
        target.close()
    assert len(target.seen) == 1 and "Bearer ERP-TOKEN" in target.seen[0]
    assert not proxy.seen, proxy.seen


def test_other_hosts_still_go_through_the_proxy(proxy: EchoProxy) -> None:
    """HTTPS_PROXY is how a merchant behind a corporate proxy reaches Karla: it must stay honoured."""
    http = SourceHttp("https://erp.example.com/api", what="ERP", headers={"Authorization": "Bearer ERP-TOKEN"},
                      policy=RetryPolicy(attempts=1))
    with pytest.raises(Unavailable):
        http.get_json("/orders")
    http.close()
    assert [seen.splitlines()[0] for seen in proxy.seen] == ["CONNECT erp.example.com:443 HTTP/1.1"]
    assert "ERP-TOKEN" not in proxy.seen[0]  # over https only the tunnel's target is the proxy's to see


def test_karla_elsewhere_still_goes_through_the_proxy(tmp_path: Path, proxy: EchoProxy) -> None:
    config = write_config(tmp_path, "https://karla.example.com", karla={"retry_attempts": 1})
    result = cli(config, "check")
    assert result.returncode != 0
    assert [seen.splitlines()[0] for seen in proxy.seen] == ["CONNECT karla.example.com:443 HTTP/1.1"]
    assert API_KEY not in "".join(proxy.seen) + result.stdout + result.stderr
