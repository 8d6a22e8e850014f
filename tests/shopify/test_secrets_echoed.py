"""A Shopify (or a proxy before it) echoing the access token from the client-credentials grant: the token,
fetched at run time and configured nowhere, is masked in what `check`, `sync` and `status` print."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, SLUG, cli
from tests.shopify.fake_server import FakeShopify

CLIENT_ID, CLIENT_SECRET = "app-client-7f3a", "shpss_echo_secret_91c2"


class EchoingShopify(FakeShopify):
    """Answers every GraphQL request 200 with a REST-style error naming the token it was sent."""

    def handle_graphql(self, version: str, headers: Any, raw: bytes) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {"errors": f"Invalid request from token {headers.get('X-Shopify-Access-Token')}"}


@pytest.fixture()
def echoing() -> Iterator[EchoingShopify]:
    with EchoingShopify() as shop:
        shop.add_client(CLIENT_ID, CLIENT_SECRET)
        yield shop


def test_the_granted_token_is_masked_in_cli_output(tmp_path: Path, sandbox: Any, echoing: EchoingShopify) -> None:
    config = tmp_path / "karla-connector.toml"
    config.write_text(
        f'[karla]\nbase_url = "{sandbox.url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n'
        f'[state]\npath = "{tmp_path / "state.db"}"\n[log]\nformat = "json"\nlevel = "DEBUG"\n'
        f'[sources.shop]\ntype = "shopify"\nshop_domain = "{echoing.domain}"\napi_base_url = "{echoing.url}"\n'
        f'client_id = "{CLIENT_ID}"\n', encoding="utf-8")
    config.chmod(0o600)
    env = {"KARLA_CONNECTOR_SOURCES__SHOP__CLIENT_SECRET": CLIENT_SECRET}

    runs = [cli(config, "check", env=env), cli(config, "sync", env=env), cli(config, "status", "--json", env=env)]

    granted = [token for token in echoing.tokens if token != echoing.token]
    assert granted, "no token was granted"
    for run in runs:
        for token in granted:
            assert token not in run.stdout + run.stderr
    assert runs[0].returncode != 0 and runs[1].returncode != 0, runs[1].stderr
    assert "from token ***" in runs[1].stderr and "from token ***" in runs[2].stdout  # the log and the stored run error
