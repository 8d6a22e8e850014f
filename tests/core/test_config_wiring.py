"""A disabled source that fails validation is skipped, not an error that stops every source; check lists it."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from connector.app import Connector
from connector.errors import ConfigError
from connector.settings import load_settings

SHOPWARE = '[sources.shopware]\ntype = "shopware"\nenabled = false\nbase_url = "https://shop.example"\nclient_id = "SWIAX"\n'


pytestmark = pytest.mark.usefixtures("clean_env")


def _config(tmp_path: Path, extra: str) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(f'[karla]\nshop_slug = "s"\napi_key = "k"\n[sources.w]\ntype = "csv"\nurl = "file:///x"\n{extra}')
    return config


def test_a_disabled_shopware_without_its_secret_does_not_stop_the_csv_source(tmp_path: Path) -> None:
    from connector.commands import run_check

    connector = Connector(load_settings(_config(tmp_path, SHOPWARE)))
    assert [rt.name for rt in connector.selected(None)] == ["w"]
    assert "sources.shopware.client_secret" in connector.disabled["shopware"]
    with pytest.raises(ConfigError, match="'shopware' has enabled = false and is not valid"):
        connector.selected(["shopware"])
    console = Console(record=True, width=300)
    run_check(load_settings(_config(tmp_path, SHOPWARE)), console)
    assert "disabled source shopware: enabled = false, not checked; not valid either" in console.export_text()


def test_connector_lists_every_bad_source_table(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, 'encodin = "x"\n[sources.v]\ntype = "csv"\n'))
    with pytest.raises(ConfigError) as info:
        Connector(settings)
    assert "sources.w.encodin" in str(info.value) and "sources.v.url" in str(info.value)
