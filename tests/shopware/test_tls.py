"""The fake Shopware behind TLS on 127.0.0.1 with a throw-away private CA (a self-signed shop): the source's
``ca_file`` trusts it, a refused certificate fails the source at once (as refused credentials do, not as an
outage), and ``verify_tls = false`` is never silent."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from connector.errors import ConfigError
from tests.conftest import API_KEY, SLUG, cli
from tests.shopware.conftest import CLIENT_ID, SECRET, Clock, MakeAdapter
from tests.shopware.fake_server import FakeShopware
from tests.tls_certs import Handshakes, Pki, serve_tls


@pytest.fixture()
def tls_shop(shop: FakeShopware, tmp_path: Path) -> tuple[str, Pki, Handshakes]:
    """The started fake behind TLS with a certificate for 127.0.0.1: its https URL, the CA, the handshakes."""
    pki = Pki(tmp_path)
    handshakes = serve_tls(shop._server, pki.server_context("127.0.0.1"))  # type: ignore[arg-type]
    return shop.url.replace("http://", "https://"), pki, handshakes


def test_ca_file_trusts_a_self_signed_shop(make_adapter: MakeAdapter, tls_shop: tuple[str, Pki, Handshakes]) -> None:
    url, pki, _ = tls_shop
    facts = make_adapter(base_url=url, ca_file=str(pki.ca_file)).check()
    assert any("token issued" in fact for fact in facts) and not any("NOT verified" in fact for fact in facts)


def test_an_unknown_ca_fails_the_source_at_once(make_adapter: MakeAdapter, tls_shop: tuple[str, Pki, Handshakes],
                                                clock: Clock) -> None:
    """Found by review: retried with backoff, then "unavailable", as if the shop were down."""
    url, _, handshakes = tls_shop
    with pytest.raises(ConfigError) as raised:
        make_adapter(base_url=url).check()
    message = str(raised.value)
    assert "TLS certificate of 127.0.0.1 was refused" in message and "set this source's ca_file" in message
    assert "verify_tls" not in message and SECRET not in message
    assert clock.slept == [] and len(handshakes.settled()) == 1


def test_verify_tls_false_warns_once_naming_the_host(make_adapter: MakeAdapter, tls_shop: tuple[str, Pki, Handshakes],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    url, _, _ = tls_shop
    with caplog.at_level(logging.WARNING):
        facts = make_adapter(base_url=url, verify_tls=False).check()
    said = "TLS certificate of 127.0.0.1 NOT verified (this source's verify_tls = false)"
    assert any(said in fact and fact.startswith("WARNING") for fact in facts), facts
    assert [r.levelno for r in caplog.records if said in r.getMessage()] == [logging.WARNING]


def test_check_through_the_cli_exits_2_for_a_refused_shop_certificate(tmp_path: Path, sandbox: Any,
                                                                       tls_shop: tuple[str, Pki, Handshakes]) -> None:
    url, _, handshakes = tls_shop
    config = tmp_path / "karla-connector.toml"
    config.write_text(
        f'[karla]\nbase_url = "{sandbox.url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n'
        f'[state]\npath = "{tmp_path / "state.db"}"\n'
        f'[sources.sw]\ntype = "shopware"\nbase_url = "{url}"\nclient_id = "{CLIENT_ID}"\n', encoding="utf-8")
    result = cli(config, "check", env={"KARLA_CONNECTOR_SOURCES__SW__CLIENT_SECRET": SECRET})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FAILED source sw" in result.stdout and "set this source's ca_file" in result.stdout
    assert len(handshakes.settled()) == 1 and SECRET not in result.stdout + result.stderr


def test_a_missing_ca_file_names_the_option(tmp_path: Path, make_adapter: MakeAdapter) -> None:
    with pytest.raises(ValueError, match="ca_file") as raised:
        make_adapter(ca_file=str(tmp_path / "nowhere.pem"))
    assert "does not exist" in str(raised.value)
