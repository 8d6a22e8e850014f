"""Karla behind TLS on 127.0.0.1 with a throw-away private CA: ``[karla].ca_file`` trusts it, a refused
certificate is a configuration error at once (no retries, exit 2, /readyz unready), and ``verify_tls = false``
is never silent."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.errors import ConfigError
from tests.conftest import API_KEY, SLUG, cli, write_config, write_orders
from tests.tls_certs import Pki, serve_tls


@pytest.fixture()
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture()
def karla(pki: Pki) -> Iterator:
    """The sandbox behind TLS with a certificate for 127.0.0.1 from ``pki``; ``handshakes`` tells each one."""
    from connector.sandbox import Sandbox

    sandbox = Sandbox(credentials={SLUG: API_KEY})
    sandbox.handshakes = serve_tls(sandbox.httpd, pki.server_context("127.0.0.1"))
    with sandbox:
        yield sandbox


def https(sandbox) -> str:  # type: ignore[no-untyped-def]
    return sandbox.url.replace("http://", "https://")


def test_ca_file_trusts_a_private_ca(tmp_path: Path, pki: Pki, karla) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, https(karla), karla={"ca_file": str(pki.ca_file)})
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    result = cli(config, "sync")
    assert result.returncode == 0, result.stderr
    assert set(karla.orders(SLUG)) == {"1"}
    assert "NOT verified" not in result.stdout + result.stderr


def test_an_unknown_ca_stops_at_once_naming_the_host_and_ca_file(tmp_path: Path, karla) -> None:  # type: ignore[no-untyped-def]
    """Found by review: retried 6 times, then "Karla API unavailable" and exit 3, as if Karla were down."""
    config = write_config(tmp_path, https(karla))  # retry_attempts = 3
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    for command in ("sync", "check"):
        done = len(karla.handshakes.settled())
        result = cli(config, command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        handshakes = karla.handshakes.settled()[done:]
        assert len(handshakes) == 1 and handshakes[0].startswith("refused"), handshakes
        assert "TLS certificate of 127.0.0.1 was refused" in result.stderr and "set [karla].ca_file" in result.stderr
        assert "unavailable" not in result.stderr and "verify_tls" not in result.stderr
        assert API_KEY not in result.stdout + result.stderr
    assert not karla.requests  # no request ever reached the server


def test_a_host_name_mismatch_counts_as_a_refused_certificate(tmp_path: Path, pki: Pki) -> None:
    """Signed by the trusted CA, but for another name: fatal after one attempt, never a sleep."""
    from connector.karla.client import KarlaClient
    from connector.sandbox import Sandbox
    from connector.settings import KarlaSettings

    slept: list[float] = []
    sandbox = Sandbox(credentials={SLUG: API_KEY})
    handshakes = serve_tls(sandbox.httpd, pki.server_context("karla.example"))
    with sandbox:
        settings = KarlaSettings(base_url=https(sandbox), shop_slug=SLUG, api_key=API_KEY, ca_file=pki.ca_file)
        with KarlaClient(settings, sleep=slept.append) as client, pytest.raises(ConfigError) as raised:
            client.check(SLUG)
        seen = handshakes.settled()
    assert "127.0.0.1" in str(raised.value) and "mismatch" in str(raised.value).lower(), raised.value
    assert slept == [] and len(seen) == 1 and client.stats.retries == 0


def test_verify_tls_false_warns_naming_the_host_and_check_says_so(tmp_path: Path, karla) -> None:  # type: ignore[no-untyped-def]
    """Found by review: certificate checking was off with no trace, and `check` said "ok"."""
    config = write_config(tmp_path, https(karla))
    result = cli(config, "check", env={"KARLA_CONNECTOR_KARLA__VERIFY_TLS": "false"})
    assert result.returncode == 0, result.stderr
    said = "TLS certificate of 127.0.0.1 NOT verified ([karla].verify_tls = false)"
    assert f"WARNING: {said}" in result.stdout  # in the Karla line of the report
    logged = [line for line in result.stderr.splitlines() if said in line]
    assert len(logged) == 1 and '"level": "warning"' in logged[0], result.stderr  # and logged, once
    assert API_KEY not in result.stdout + result.stderr


@pytest.mark.parametrize("problem", ["missing", "not pem"])
def test_an_unusable_ca_file_is_a_config_error_naming_the_option(tmp_path: Path, problem: str) -> None:
    ca_file = tmp_path / "corporate-ca.pem"
    if problem == "not pem":
        ca_file.write_text("not a certificate\n")
    config = write_config(tmp_path, "https://api.gokarla.io", karla={"ca_file": str(ca_file)})
    result = cli(config, "check")
    assert result.returncode == 2
    assert "karla.ca_file" in result.stderr and str(ca_file) in result.stderr.replace("\n", ""), result.stderr
    assert ("does not exist" if problem == "missing" else "not a PEM file") in result.stderr


def test_a_refused_certificate_makes_the_daemon_unready_at_once(tmp_path: Path, karla, caplog) -> None:  # type: ignore[no-untyped-def]
    from connector.app import Connector
    from connector.daemon import Daemon
    from connector.settings import load_settings

    config = write_config(tmp_path, https(karla))
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    connector = Connector(load_settings(config), sleep=lambda _: None)
    try:
        daemon = Daemon(connector)
        with caplog.at_level(logging.INFO):
            daemon._sync_job(connector.sources["warehouse"], False)  # reads, then delivers: the handshake fails
        ready, body = daemon.readiness.check()
        handshakes = karla.handshakes.settled()
    finally:
        connector.close()
    assert ready is False and "needs a human" in body["problems"]["karla"], body
    assert "[karla].ca_file" in body["problems"]["karla"] and len(handshakes) == 1
    assert not any("retrying after" in r.getMessage() for r in caplog.records)
