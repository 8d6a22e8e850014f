"""The plugin path end to end: a separately installed package adds a source type the engine uses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.registry import available, load_adapter
from tests.conftest import API_KEY, SLUG, cli


def test_installed_adapters_include_ours_and_the_example_plugin() -> None:
    types = {info.type: info for info in available()}
    assert {"csv", "jsonl"} <= set(types)
    assert types["jsonl"].distribution == "karla-connector-example-adapter"


def test_adapters_command_lists_versions_and_fields(tmp_path: Path) -> None:
    result = cli(tmp_path / "unused.toml", "adapters", "--json")
    rows = {row["type"]: row for row in json.loads(result.stdout)}
    assert rows["jsonl"]["version"] == "0.1.0" and "path" in rows["jsonl"]["fields"]
    assert "url" in rows["csv"]["fields"] and rows["csv"]["package"] == "karla-connector"


def test_a_broken_plugin_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import connector.registry as registry

    broken = EntryPoint(name="broken", value="no_such_module_xyz:Adapter", group=registry.GROUP)
    real = registry._entry_points
    monkeypatch.setattr(registry, "_entry_points", lambda: {**real(), "broken": broken})
    with pytest.raises(ConfigError, match="adapter 'broken' .* failed to load"):
        load_adapter("broken")
    assert load_adapter("jsonl").type == "jsonl"  # the others still load


def test_example_plugin_syncs_to_karla(tmp_path: Path, sandbox) -> None:
    data = tmp_path / "orders.jsonl"
    data.write_text(json.dumps({"number": "P-1", "updated": "2026-11-20T10:00:00Z", "zip": "10119",
                                "parcels": [{"code": "PT1", "carrier": "UPS"}]}) + "\n")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[karla]\nbase_url = "{sandbox.url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n'
        f'[state]\npath = "{tmp_path / "s.db"}"\n[sources.toy]\ntype = "jsonl"\npath = "{data}"\n'
    )
    result = cli(config, "sync")
    assert result.returncode == 0, result.stderr
    assert sandbox.orders(SLUG)["P-1"]["trackings"][0]["carrier_reference"] == "ups"


def _with_entry_point(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    from importlib.metadata import EntryPoint

    import connector.registry as registry

    real = registry._entry_points
    extra = EntryPoint(name=name, value=value, group=registry.GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: {**real(), name: extra})


def test_a_class_registered_under_another_name_is_a_load_error_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.registry import AdapterLoadError

    _with_entry_point(monkeypatch, "jsonl-alias", "karla_example_adapter:JsonlAdapter")  # the class says type = "jsonl"
    with pytest.raises(AdapterLoadError, match="entry-point name is 'jsonl-alias' but the class declares type = 'jsonl'"):
        load_adapter("jsonl-alias")
    assert load_adapter("jsonl").type == "jsonl"


def test_a_config_that_refuses_its_own_type_is_a_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types
    from typing import Literal

    from adapters.base import SourceConfig
    from connector.registry import AdapterLoadError
    from karla_example_adapter import JsonlAdapter

    class OtherConfig(SourceConfig):
        type: Literal["other"] = "other"

    class Mismatched(JsonlAdapter):
        type = "mismatched"
        Config = OtherConfig

    module = types.ModuleType("karla_test_mismatched_plugin")
    module.Mismatched = Mismatched  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    _with_entry_point(monkeypatch, "mismatched", f"{module.__name__}:Mismatched")
    with pytest.raises(AdapterLoadError, match="Config \\(OtherConfig\\) does not accept type = 'mismatched'"):
        load_adapter("mismatched")


def test_a_misregistered_plugin_only_takes_down_its_own_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the check this was a pydantic error on sources.a_bad.type that stopped every source."""
    from connector.app import Connector
    from connector.settings import load_settings

    _with_entry_point(monkeypatch, "jsonl-alias", "karla_example_adapter:JsonlAdapter")
    for key in [k for k in os.environ if k.startswith("KARLA_CONNECTOR_")]:
        monkeypatch.delenv(key)
    data = tmp_path / "orders.jsonl"
    data.write_text("")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[karla]\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n[state]\npath = "{tmp_path / "s.db"}"\n'
        f'[sources.a_bad]\ntype = "jsonl-alias"\npath = "{data}"\n[sources.z_good]\ntype = "jsonl"\npath = "{data}"\n'
    )
    connector = Connector(load_settings(config))
    try:
        assert list(connector.sources) == ["z_good"]
        assert "'jsonl-alias'" in connector.broken["a_bad"] and "type = 'jsonl'" in connector.broken["a_bad"]
    finally:
        connector.close()
