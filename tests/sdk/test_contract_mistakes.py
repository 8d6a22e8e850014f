"""Contract mistakes an adapter author makes that failed deep in the engine, naming neither adapter nor record
(review sdk8, findings 5-6): each is now refused where it is made, saying what to build instead."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pytest

from adapters.base import FileMark, Page, Record, SourceConfig, StreamSpec
from connector.engine import SourceRuntime, stream_specs, sync_source
from connector.karla import OrderPlacement
from state.db import open_state

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
ORDER = OrderPlacement.model_validate({"order_number": "7", "address": {"zip_code": "10119"}})


class ErpConfig(SourceConfig):
    type: Literal["erp"] = "erp"


class Erp:
    type = "erp"
    Config = ErpConfig
    PAGE: Any = None

    def __init__(self, name: str, config: ErpConfig, context: Any) -> None:
        pass

    def check(self) -> list[str]:
        return []

    def streams(self) -> list[StreamSpec]:
        return [StreamSpec("orders")]

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        yield self.PAGE


def _sync(tmp_path: Path, adapter: type) -> None:
    sync_source(open_state(tmp_path / "s.db"), SourceRuntime("erp1", adapter, ErpConfig(), "shop"), clock=lambda: NOW)


def test_an_order_given_as_a_dict_is_refused_naming_the_record() -> None:
    with pytest.raises(TypeError, match=r"Record '7' \(erp://7\): order must be a connector\.karla\.OrderPlacement, not dict"):
        Record(key="7", location="erp://7", order={"order_number": "7"})  # type: ignore[arg-type]


@pytest.mark.parametrize(("page", "said"), [
    (Page(records=[Record(key="7", order=ORDER, location="erp://7", trackings=[{"tracking_number": "T1"}])]),  # type: ignore[list-item]
     r"read\('orders'\): Record '7' \(erp://7\): trackings holds a dict, not a connector\.karla\.Tracking"),
    (Page(records=[Record(key="7", order=ORDER)], done_files=["orders.jsonl"]),  # type: ignore[list-item]
     r"read\('orders'\): Page\.done_files holds a str \('orders\.jsonl'\), not an adapters\.base\.FileMark"),
])
def test_a_page_of_wrong_parts_is_refused_naming_the_adapter(tmp_path: Path, page: Page, said: str) -> None:
    with pytest.raises(TypeError, match=r"source erp1: the erp adapter's " + said):
        _sync(tmp_path, type("Wrong", (Erp,), {"PAGE": page}))


def test_a_file_mark_is_accepted(tmp_path: Path) -> None:
    _sync(tmp_path, type("Right", (Erp,), {"PAGE": Page(done_files=[FileMark("orders.jsonl", 1, 1.0, "ab")])}))


class NoStreams(Erp):
    def streams(self) -> list[StreamSpec]:
        return []


class ReturnsNone(Erp):
    def read(self, stream: str, cursor: str | None) -> Any:  # a plain function that forgot its pages
        return None


def test_no_streams_is_refused_by_sync_and_check(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"source erp1: the erp adapter's streams\(\) returned no stream"):
        _sync(tmp_path, NoStreams)
    with pytest.raises(TypeError, match="at least one adapters.base.StreamSpec"):
        stream_specs(SourceRuntime("erp1", NoStreams, ErpConfig(), "shop"), [])


def test_a_read_that_returns_none_is_refused_naming_adapter_and_stream(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"source erp1: the erp adapter's read\('orders'\) returned NoneType, not an iterator"):
        _sync(tmp_path, ReturnsNone)


def test_a_plugins_type_keeps_the_base_description() -> None:
    """`karla-connector adapters` printed an empty ``type`` line for every plugin."""
    assert ErpConfig.model_fields["type"].description == SourceConfig.model_fields["type"].description
    assert SourceConfig.model_fields["type"].description


NO_STREAMS = '''
from typing import Literal
from adapters.base import SourceConfig


class NoneConfig(SourceConfig):
    type: Literal["nostreams"] = "nostreams"


class NoStreams:
    type = "nostreams"
    Config = NoneConfig

    def __init__(self, name, config, context):
        pass

    def check(self):
        return ["reachable"]

    def streams(self):
        return []

    def read(self, stream, cursor):
        yield from ()
'''


def test_check_and_sync_refuse_a_plugin_without_streams_and_adapters_describes_its_type(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    import json
    import os

    from tests.conftest import API_KEY, SLUG, cli

    site = tmp_path / "site"
    (site / "nostreams-0.1.dist-info").mkdir(parents=True)
    (site / "nostreams_plugin.py").write_text(NO_STREAMS)
    (site / "nostreams-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: nostreams\nVersion: 0.1\n")
    (site / "nostreams-0.1.dist-info" / "entry_points.txt").write_text(
        "[karla_connector.adapters]\nnostreams = nostreams_plugin:NoStreams\n")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    config = tmp_path / "c.toml"
    config.write_text(f'[karla]\nbase_url = "{sandbox.url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n'
                      f'[state]\npath = "{tmp_path / "s.db"}"\n[sources.erp]\ntype = "nostreams"\n')
    checked = cli(config, "check", env=env)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "streams() returned no stream" in " ".join(checked.stdout.split())
    synced = cli(config, "sync", env=env)
    assert synced.returncode != 0 and "streams() returned no stream" in " ".join((synced.stdout + synced.stderr).split())
    rows = {row["type"]: row for row in json.loads(cli(config, "adapters", "--json", env=env).stdout)}
    assert rows["nostreams"]["fields"]["type"] == SourceConfig.model_fields["type"].description
