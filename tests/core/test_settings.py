"""Configuration: the example file loads, env overrides nest, bad values name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.app import Connector
from connector.errors import ConfigError
from connector.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("KARLA_CONNECTOR_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def test_example_config_loads_and_every_source_validates() -> None:
    settings = load_settings(ROOT / "config.example.toml")
    assert settings.karla.shop_slug == "my-shop"
    assert settings.karla.bulk_max_orders == 50 and settings.karla.bulk_max_bytes == 1_000_000
    connector = Connector(settings)  # validates each [sources.*] with its adapter's Config
    assert connector.sources["warehouse"].config.type == "csv"


def test_env_overrides_toml_with_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__API_KEY", "from-env-key")
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__BULK_MAX_ORDERS", "7")
    monkeypatch.setenv("KARLA_CONNECTOR_SOURCES__WAREHOUSE__ENCODING", "cp1252")
    settings = load_settings(ROOT / "config.example.toml")
    assert settings.karla.api_key.get_secret_value() == "from-env-key"
    assert settings.karla.bulk_max_orders == 7
    assert settings.sources["warehouse"]["encoding"] == "cp1252"
    assert settings.sources["warehouse"]["url"] == "file:///srv/exports"  # the rest of the table survives


def test_config_path_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARLA_CONNECTOR_CONFIG", str(ROOT / "config.example.toml"))
    assert load_settings().karla.shop_slug == "my-shop"


def test_credentials_directory_is_read_like_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "KARLA_CONNECTOR_KARLA__API_KEY").write_text("from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    settings = load_settings(ROOT / "config.example.toml")
    assert settings.karla.api_key.get_secret_value() == "from-credential"


def test_bad_value_names_key_file_and_env(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\nbulk_max_orders = "lots"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    assert "karla.bulk_max_orders" in message and str(config) in message
    assert "KARLA_CONNECTOR_KARLA__BULK_MAX_ORDERS" in message


def test_unknown_key_and_missing_file_are_errors(tmp_path: Path) -> None:
    config = tmp_path / "typo.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\nbulk_max_order = 5\n')
    with pytest.raises(ConfigError, match="karla.bulk_max_order"):
        load_settings(config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_bad_source_key_is_named_with_its_source(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\n[sources.w]\ntype = "csv"\nurl = "file:///x"\nencodng = "x"\n')
    with pytest.raises(ConfigError, match="sources.w.encodng"):
        Connector(load_settings(config))


def test_unknown_source_type_lists_installed_adapters(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\n[sources.w]\ntype = "magento"\n')
    with pytest.raises(ConfigError, match=r"unknown source type 'magento'; installed adapters: .*csv"):
        Connector(load_settings(config))


def test_secrets_are_masked_in_repr(tmp_path: Path) -> None:
    settings = load_settings(ROOT / "config.example.toml")
    assert "replace-me" not in repr(settings) and "replace-me" not in str(settings.karla.model_dump())
    connector = Connector(settings)
    for runtime in connector.sources.values():  # validated adapter configs hold SecretStr
        assert "replace-me" not in repr(runtime.config) + str(runtime.config)
