"""Karla's keys belong to one shop unless they are organisation keys: sending a source's orders to another
shop with the main shop's key refuses that shop only, and [karla].api_version goes as Karla-Version.

The sandbox ties each key to its user's shop here (``Sandbox.scope_keys``), as Karla does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.app import Connector
from connector.errors import ConfigError, ShopRefused
from connector.settings import load_settings
from tests.conftest import API_KEY, SLUG, cli, write_config, write_orders

AUSTRIA = "a-shop-austria"


def two_shops(tmp_path: Path, url: str, **karla: object) -> Path:
    """Orders 1 and 2 for [karla].shop_slug, order 901 for the Austrian shop (another source's shop_slug)."""
    other = tmp_path / "austria"
    other.mkdir()
    extra = f'[sources.at]\ntype = "csv"\nurl = "file://{other}"\nsettle_seconds = 0\nshop_slug = "{AUSTRIA}"\n'
    config = write_config(tmp_path, url, karla=karla, extra=extra)
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    write_orders(other, "orders_001.csv", [901])
    return config


def test_a_shop_key_refused_for_another_shop_holds_back_only_that_shop(tmp_path: Path, sandbox) -> None:
    sandbox.scope_keys()  # the key of test-shop: Karla refuses it for a-shop-austria
    config = two_shops(tmp_path, sandbox.url)
    done = cli(config, "sync")
    assert done.returncode == 2, done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert AUSTRIA in said and "organisation-level key" in said and "stay queued" in said
    assert "wrong, deleted or expired" not in said  # the key is fine for its own shop
    assert sorted(sandbox.orders(SLUG)) == ["1", "2"] and sandbox.orders(AUSTRIA) == {}
    status = json.loads(cli(config, "status", "--json").stdout)
    assert status["pending"] == 1 and status["dead"] == 0  # Austria's order waits for an organisation key


def test_check_says_a_shop_key_cannot_send_to_another_shop(tmp_path: Path, sandbox) -> None:
    sandbox.scope_keys()
    done = cli(two_shops(tmp_path, sandbox.url), "check")
    assert done.returncode == 2
    said = " ".join((done.stdout + done.stderr).split())
    assert f"shop '{AUSTRIA}'" in said and "organisation-level key" in said and "[karla].username" in said


def test_an_organisation_key_sends_to_every_shop(tmp_path: Path, sandbox) -> None:
    sandbox.credentials = {"acme-org": API_KEY, SLUG: "the-shops-own-key"}
    sandbox.scope_keys(organisation={"acme-org"})
    done = cli(two_shops(tmp_path, sandbox.url, username="acme-org"), "sync")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(sandbox.orders(SLUG)) == ["1", "2"] and sorted(sandbox.orders(AUSTRIA)) == ["901"]


def test_a_key_refused_for_the_main_shop_still_stops_every_shop(tmp_path: Path, sandbox) -> None:
    """Another shop's key as [karla].api_key: refused for [karla].shop_slug itself, which is the key's fault."""
    sandbox.credentials = {AUSTRIA: API_KEY}
    sandbox.scope_keys()
    config = write_config(tmp_path, sandbox.url, karla={"username": AUSTRIA})
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    connector = Connector(load_settings(config), sleep=lambda _: None)
    assert connector.sync(deliver=False)
    with pytest.raises(ConfigError, match="the API key was refused") as info:
        connector.deliver()
    assert not isinstance(info.value, ShopRefused) and connector.status()["pending"] == 2


@pytest.mark.parametrize("version", ["2025-06-01", None])
def test_api_version_goes_as_karla_version_on_every_request(tmp_path: Path, sandbox, version: str | None) -> None:
    config = write_config(tmp_path, sandbox.url, karla={"api_version": version} if version else {})
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    assert cli(config, "check").returncode == 0
    assert cli(config, "sync").returncode == 0
    assert {r.method for r in sandbox.requests} == {"GET", "PUT"}  # the check's read and the sync's writes
    assert [r.karla_version for r in sandbox.requests] == [version] * len(sandbox.requests)


def test_an_api_version_that_cannot_be_a_header_is_refused_at_load(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, karla={"api_version": "2025–06–01"})  # en dashes from a document
    with pytest.raises(ConfigError, match=r"api_version.*printable ASCII"):
        load_settings(config)
