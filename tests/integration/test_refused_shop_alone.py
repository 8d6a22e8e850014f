"""A shop Karla refuses holds back only its own orders, also in the daemon; a 401 for another shop is blamed on
the key's scope only once the key is shown to work. Found by review (diff5, findings 2 and 3).

The daemon runs in-process on an injected clock against the real sandbox, whose keys are tied to their shop
(``Sandbox.scope_keys``): the main key is refused for the Austrian shop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from connector.app import Connector
from connector.daemon import Daemon
from connector.errors import ShopRefused
from connector.karla.client import KarlaClient
from connector.sandbox.faults import error
from connector.settings import KarlaSettings, load_settings
from tests.conftest import SLUG, cli, write_config, write_orders
from tests.integration.test_karla_shop_keys import AUSTRIA, two_shops


def _puts(sandbox, slug: str) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for r in sandbox.requests if r.method == "PUT" and f"/shops/{slug}/" in r.path)


@pytest.fixture()
def daemon(tmp_path: Path, sandbox) -> Iterator:  # type: ignore[no-untyped-def]
    """Orders 1, 2 (main shop) and 901 (Austria) read; the daemon's clock in ``daemon.clock[0]``."""
    sandbox.scope_keys()
    connector = Connector(load_settings(two_shops(tmp_path, sandbox.url)), sleep=lambda _: None)
    now = [1_000_000.0]
    connector.now = lambda: now[0]  # type: ignore[method-assign]
    d = Daemon(connector)
    d.clock = now  # type: ignore[attr-defined]
    for rt in connector.sources.values():
        connector.sync_one(rt)
    try:
        yield d
    finally:
        connector.close()


def test_a_refused_shop_waits_alone_and_is_tried_again_hourly(daemon, sandbox, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                              caplog: pytest.LogCaptureFixture) -> None:
    now = daemon.clock
    with caplog.at_level(logging.DEBUG, logger="connector.daemon"):
        daemon._deliver_job()  # orders 1 and 2 go; Austria is refused
        assert sorted(sandbox.orders(SLUG)) == ["1", "2"] and _puts(sandbox, AUSTRIA) == 1
        ready, body = daemon.readiness.check()
        assert ready is False and set(body["problems"]) == {f"shop {AUSTRIA}"}, body  # not Karla as a whole
        assert "needs a human" in body["problems"][f"shop {AUSTRIA}"]

        write_orders(tmp_path / "files", "orders_002.csv", [3])  # a new order of the main shop, a minute later
        now[0] += 60
        daemon._sync_job(daemon.connector.sources["warehouse"], False)  # its poll wakes delivery
        assert "3" in sandbox.orders(SLUG) and _puts(sandbox, AUSTRIA) == 1  # Austria left out meanwhile
        for _ in range(10):
            now[0] += 30
            daemon._deliver_job()
        assert _puts(sandbox, AUSTRIA) == 1

        now[0] += 3600
        daemon._deliver_job()  # an hour on: Austria asked once more, still refused
        assert _puts(sandbox, AUSTRIA) == 2 and daemon.readiness.check()[0] is False

        sandbox.scope_keys(organisation={SLUG})  # the merchant's key now serves every shop
        now[0] += 3600
        daemon._deliver_job()
        assert sorted(sandbox.orders(AUSTRIA)) == ["901"] and daemon.readiness.check() == (True, {"problems": {}})
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "connector.daemon"]
    stopped = [level for level, message in said if message.startswith(f"delivery to shop '{AUSTRIA}' stopped")]
    assert stopped == ["ERROR", "DEBUG"], said
    assert not any(message.startswith("delivery stopped") for _, message in said), said  # Karla itself is fine
    assert ("INFO", f"delivery to shop '{AUSTRIA}' resumed: Karla takes its orders again") in said


def test_a_refused_shop_leaves_another_fatal_answer_said_at_error(daemon, sandbox, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    now = daemon.clock
    with caplog.at_level(logging.DEBUG, logger="connector.daemon"):
        daemon._deliver_job()  # Austria refused
        write_orders(tmp_path / "files", "orders_002.csv", [3])
        daemon.connector.sync_one(daemon.connector.sources["warehouse"])
        sandbox.fail_next(501, body=error("service_not_implemented", "Not implemented"))
        now[0] += 30
        daemon._deliver_job()
    errors = [r.getMessage() for r in caplog.records if r.name == "connector.daemon" and r.levelname == "ERROR"]
    assert len(errors) == 2 and errors[1].startswith("delivery stopped: Karla answered 501"), errors
    assert set(daemon.readiness.check()[1]["problems"]) == {"karla", f"shop {AUSTRIA}"}


def test_a_revoked_key_sending_to_a_sources_own_shop_is_called_a_refused_key(tmp_path: Path, sandbox) -> None:
    """Every source names its own shop_slug; [karla].shop_slug only gives the user name. A wrong key there was
    called a scope problem ("needs an organisation-level key"), sending the merchant to the wrong fix."""
    config = write_config(tmp_path, sandbox.url, source={"shop_slug": "acme-at"})
    config.write_text(config.read_text().replace('api_key = "', 'api_key = "revoked-', 1))
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    done = cli(config, "sync")
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, said
    assert "the API key was refused (wrong, deleted or expired)" in said and f"shop 'acme-at' and [karla].shop_slug '{SLUG}'" in said
    assert "organisation-level key" not in said
    probes = [r for r in sandbox.requests if r.method == "GET"]
    assert [(r.path, r.status) for r in probes] == [(f"/v1/shops/{SLUG}/orders", 401)]  # asked once, read only


class _Karla(BaseHTTPRequestHandler):
    """401 for any shop; the probe of the main shop finds Karla failing (503): the key is not known to work."""

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(401, b'{"key": "invalid_merchant_or_key", "message": "Invalid merchant or key"}')

    def do_GET(self) -> None:  # noqa: N802
        self._answer(503, b'{"message": "down"}')

    def _answer(self, status: int, body: bytes) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_a_401_for_another_shop_whose_key_cannot_be_checked_says_the_key_may_be_wrong() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Karla)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = KarlaSettings(base_url=f"http://127.0.0.1:{server.server_port}", shop_slug=SLUG,
                             api_key=SecretStr("some-key"), retry_attempts=1)
    try:
        with KarlaClient(settings, sleep=lambda _: None) as client:
            with pytest.raises(ShopRefused) as info:
                client.bulk_upsert_raw("acme-at", b"[]")
            assert "organisation-level key" in str(info.value) and "or the key is wrong, deleted or expired" in str(info.value)
    finally:
        server.shutdown()
        server.server_close()
