"""What a newcomer's first config meets: a fresh copy of config.example.toml, and a source removed in part."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from connector.app import Connector
from connector.errors import ConfigError
from connector.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("clean_env")


def test_a_fresh_copy_of_the_example_runs_its_csv_source_without_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The shop examples lack their secrets (set in the environment): shipped as disabled tables they failed
    validation and logged two WARNINGs at every check, sync and run of a newcomer's first config."""
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__API_KEY", "from-env-key")
    config = tmp_path / "karla-connector.toml"
    config.write_bytes((ROOT / "config.example.toml").read_bytes())
    config.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        connector = Connector(load_settings(config))
    assert list(connector.sources) == ["warehouse"] and connector.disabled == {}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_sub_tables_left_of_a_removed_source_are_named_as_a_leftover(tmp_path: Path) -> None:
    """Deleting [sources.shop] but not [sources.shop.carriers] asked for sources.shop.type: add a type?"""
    config = tmp_path / "karla-connector.toml"
    config.write_text(
        '[karla]\nshop_slug = "s"\napi_key = "k"\n[sources.warehouse]\ntype = "csv"\nurl = "file:///x"\n'
        '[sources.shop.carriers]\n"DHL Express Worldwide" = "dhlexp"\n[sources.shop.columns]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Connector(load_settings(config))
    message = str(caught.value)
    assert ("[sources.shop] has no keys of its own, only [sources.shop.carriers], [sources.shop.columns]: a leftover "
            "of a removed or renamed source? Remove it, or move it under the source it belongs to") in message
    assert "type is missing" not in message


def test_a_source_without_type_but_with_keys_still_asks_for_the_type(tmp_path: Path) -> None:
    config = tmp_path / "karla-connector.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\n[sources.w]\nurl = "file:///x"\n[sources.w.carriers]\n')
    with pytest.raises(ConfigError, match=r'config key sources\.w\.type is missing \(e\.g\. type = "csv"\)'):
        Connector(load_settings(config))
