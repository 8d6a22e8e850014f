"""A ``user:password@`` in a URL option is refused at load, without echoing the password: the URL is named in
every message of its client (found by review: "Shopware http://stage:HTPASSWD99@127.0.0.1:18650 ...")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import cli

PASSWORD = "HTPASSWD99"
URL = f"http://stage:{PASSWORD}@127.0.0.1:9"
KARLA = '[karla]\nshop_slug = "s"\napi_key = "k"\nbase_url = "{karla}"\n[state]\npath = "{state}"\n'
SOURCES = {
    "karla.base_url": "",
    "sources.sw.base_url": f'[sources.sw]\ntype = "shopware"\nbase_url = "{URL}"\nclient_id = "SWIAX"\nclient_secret = "x"\n',
    "sources.shop.api_base_url": (
        f'[sources.shop]\ntype = "shopify"\nshop_domain = "a.myshopify.com"\napi_base_url = "{URL}"\naccess_token = "t"\n'
    ),
}


@pytest.mark.parametrize("option", list(SOURCES))
def test_a_password_in_a_url_option_is_refused_without_being_shown(tmp_path: Path, option: str) -> None:
    karla = URL if option == "karla.base_url" else "http://127.0.0.1:9"
    config = tmp_path / "k.toml"
    config.write_text(KARLA.format(karla=karla, state=tmp_path / "s.db") + SOURCES[option])
    config.chmod(0o600)
    result = cli(config, "check")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert re.search(rf"config key {re.escape(option)}: .*must not contain user:password@", output), output
    assert PASSWORD not in output
