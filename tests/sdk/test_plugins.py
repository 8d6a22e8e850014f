"""The plugin path end to end: a separately installed package adds a source type the engine uses."""

from __future__ import annotations

import json
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
