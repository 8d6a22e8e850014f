"""What a careless or unlucky plugin does to a run: a secret quoted in its error, a rejection or record of the
wrong type, a ``close()`` that raises, a ``check()`` that returns a str, a name another package declares too.

The plugin is a real installed package (a ``.dist-info`` on ``PYTHONPATH``) run by the real CLI against the
Karla sandbox; the discovery order of packages (the file system's) is the one thing replaced, in-process."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import Iterator
from datetime import datetime, timezone
from importlib.metadata import PathDistribution
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from adapters.base import Page, Record, Rejected, StreamSpec
from connector import registry
from connector.engine import SourceRuntime, sync_source
from connector.errors import ConfigError
from connector.karla import OrderPlacement, Tracking
from connector.logs import redact, register_secrets, register_token
from state import open_state
from tests.conftest import API_KEY, SLUG, cli
from tests.sdk.test_contract_kit import KitConfig

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
TOKEN = "Zq\\x\"Y'Kr7Secret"  # a backslash and both quote kinds: repr() escapes all three
TAIL = "Kr7Secret"

PLUGIN = '''
from __future__ import annotations
from pathlib import Path
from typing import Literal
from pydantic import SecretStr
from adapters.base import Page, Record, Rejected, SourceConfig, StreamSpec
from connector.karla import OrderPlacement


class Review6Config(SourceConfig):
    type: Literal["review6"] = "review6"
    token: SecretStr = SecretStr("unset")
    mode: str = "good"


class Review6:
    type = "review6"
    Config = Review6Config

    def __init__(self, name, config, context):
        self.config, self.context = config, context

    def check(self):
        if self.config.mode == "check_str":
            return "reachable"
        if self.config.mode == "check_log":
            self.context.log.warning("cursor format is old")
        return ["reachable"]

    def streams(self):
        return ["orders"] if self.config.mode == "streams_str" else [StreamSpec("orders")]

    def read(self, stream, cursor):
        mode = self.config.mode
        if mode in ("read_raise", "close_raise_read"):
            raise RuntimeError(f"source exploded; token={self.config.token.get_secret_value()}")
        if mode == "careless":
            yield Page(rejected=[Rejected(location=Path("orders.jsonl"), reason=ValueError("not JSON"), raw="the line")],
                       cursor="1")
        if mode == "dict_record":
            yield Page(records=[{"key": "R-1"}], cursor="1")
        order = OrderPlacement.model_validate({"order_number": "R-1", "address": {"zip_code": "10115"},
                                               "products": [{"sku": "S1", "quantity": 1, "price": 1}]})
        yield Page(records=[Record(key="R-1", order=order, location="erp://R-1")], cursor="2")

    def close(self):
        if self.config.mode.startswith("close_raise"):
            raise OSError("connection reset while closing")
'''


def _package(site: Path, dist: str, module: str, code: str, entry_points: dict[str, str]) -> Path:
    """An installed package as pip leaves one: the module and its ``.dist-info`` with the entry points."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\n{lines}")
    return info


def _config(tmp_path: Path, url: str, mode: str) -> Path:
    _package(tmp_path / "site", "review6-plugin", "review6_plugin", PLUGIN, {"review6": "review6_plugin:Review6"})
    token = TOKEN.replace("\\", "\\\\").replace('"', '\\"')
    config = tmp_path / "karla-connector.toml"
    config.write_text(
        f'[karla]\nbase_url = "{url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\nretry_attempts = 1\n'
        f'[state]\npath = "{tmp_path / "state.db"}"\n[log]\nformat = "json"\n'
        f'[sources.erp]\ntype = "review6"\nmode = "{mode}"\ntoken = "{token}"\n'
    )
    config.chmod(0o600)
    return config


def _run(config: Path, *args: str):
    return cli(config, *args, env={"PYTHONPATH": str(config.parent / "site")})


def _runs(config: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(config.parent / "state.db") as conn:
        return conn.execute("select status, error from run where source = 'erp'").fetchall()


# -- 1: a secret as repr() and JSON quote it -----------------------------------------------------------------
def test_a_secret_with_a_backslash_and_quotes_is_masked_in_the_log_the_run_history_and_status(tmp_path: Path, sandbox) -> None:
    config = _config(tmp_path, sandbox.url, "read_raise")
    result = _run(config, "sync")
    assert result.returncode == 3, result.stderr
    assert "source erp failed" in result.stderr and TAIL not in result.stderr, result.stderr
    (status, error), = _runs(config)
    assert status == "failed" and "source exploded; token=***" in error and TAIL not in error, error
    shown = _run(config, "status", "--json")
    assert "source exploded" in shown.stdout and TAIL not in shown.stdout


@pytest.mark.parametrize("secret", ["Ab\\Cdefgh123", "Ab\"C'defgh123", "Ab\u00e9\\Cdefgh123"])
def test_every_quoted_form_of_a_secret_is_masked(secret: str) -> None:
    register_secrets([secret])
    register_token("review6-owner", secret + "-tok")
    for text in (repr(RuntimeError(f"token={secret}")), json.dumps(repr(RuntimeError(f"token={secret}"))),
                 repr(json.dumps({"token": secret})), repr(RuntimeError(f"token={secret}-tok"))):
        assert "defgh123" not in redact(text), text


# -- 2: rejections and records of the wrong type --------------------------------------------------------------
def test_a_careless_rejection_becomes_a_dead_letter_and_the_source_goes_on(tmp_path: Path, sandbox) -> None:
    config = _config(tmp_path, sandbox.url, "careless")
    result = _run(config, "sync")
    assert result.returncode == 1, result.stderr  # dead letters, all else sent
    assert "R-1" in sandbox.orders(SLUG)
    letters = json.loads(_run(config, "dlq", "list", "--json").stdout)
    assert [(x["location"], x["reason"]) for x in letters] == [("orders.jsonl", "not JSON")]
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert conn.execute("select payload from dead_letter").fetchone() == ('{"raw": "the line"}',)


@pytest.mark.parametrize(("mode", "said"), [
    ("dict_record", "the review6 adapter's read('orders'): Page.records holds a dict, not an adapters.base.Record"),
    ("streams_str", "the review6 adapter's streams() must return adapters.base.StreamSpec objects, not str"),
])
def test_a_record_or_stream_of_the_wrong_type_is_named_with_the_adapter(tmp_path: Path, sandbox, mode: str, said: str) -> None:
    config = _config(tmp_path, sandbox.url, mode)
    result = _run(config, "sync")
    assert result.returncode == 3 and said in result.stderr, result.stderr


def test_the_kit_still_tells_the_author_of_a_reason_that_is_no_str() -> None:
    from tests.sdk.test_contract_kit import kit_for  # noqa: PLC0415

    class Careless:
        type, Config = "kit", KitConfig

        def __init__(self, name, config, context) -> None: ...
        def check(self) -> list[str]: return []
        def streams(self) -> list[StreamSpec]: return [StreamSpec("orders")]

        def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
            record = Record(key="1", trackings=[Tracking.model_validate({"tracking_number": "T1"})], location="x:1")
            yield Page(records=[record], rejected=[Rejected(location="x:2", reason=ValueError("bad"))], cursor="2")

    with pytest.raises(AssertionError, match="Rejected.location and reason must be str"):
        kit_for(Careless).test_pages_hold_valid_karla_records()


def test_trackings_as_a_generator_are_kept_and_a_single_tracking_is_refused_naming_the_record() -> None:
    parcel = Tracking.model_validate({"tracking_number": "T1", "carrier_reference": "dhl"})
    assert Record(key="1", trackings=(t for t in [parcel]), location="erp://1").trackings == (parcel,)
    with pytest.raises(TypeError, match=r"Record '1' \(erp://1\): trackings must be a list .* not Tracking"):
        Record(key="1", trackings=parcel, location="erp://1")  # type: ignore[arg-type]


def test_a_blank_key_is_refused_where_the_record_is_made() -> None:
    order = OrderPlacement.model_validate({"order_number": "1", "address": {"zip_code": "10115"},
                                           "products": [{"sku": "S1", "quantity": 1, "price": 1}]})
    with pytest.raises(ValueError, match="Record.key is empty"):
        Record(key="  ", order=order)
    assert Rejected(location="x:1", reason="bad", key=" ").key is None


# -- 3: close() that raises -------------------------------------------------------------------------------------
@pytest.mark.parametrize("full", [False, True])
def test_a_close_that_raises_leaves_the_run_ok_and_a_full_syncs_orders_released(tmp_path: Path, sandbox, full: bool) -> None:
    config = _config(tmp_path, sandbox.url, "close_raise")
    result = _run(config, "sync", *(["--full"] if full else []))
    assert result.returncode == 0, result.stderr
    assert "R-1" in sandbox.orders(SLUG)  # a full sync's changes were held until it finished: released
    assert _runs(config) == [("ok", None)]
    warning = next(json.loads(line) for line in result.stderr.splitlines() if "close()" in line)
    assert warning["level"] == "warning" and "the review6 adapter's close() failed" in warning["msg"], warning


def test_a_close_that_raises_does_not_hide_why_the_read_failed(tmp_path: Path, sandbox) -> None:
    config = _config(tmp_path, sandbox.url, "close_raise_read")
    result = _run(config, "sync")
    assert result.returncode == 3, result.stderr
    (status, error), = _runs(config)
    assert status == "failed" and "source exploded" in error, error
    failed = next(json.loads(line)["msg"] for line in result.stderr.splitlines() if "source erp failed" in line)
    assert "source exploded" in failed and "connection reset" not in failed, failed


def test_check_goes_on_to_karla_when_close_raises(tmp_path: Path, sandbox) -> None:
    result = _run(_config(tmp_path, sandbox.url, "close_raise"), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok source erp (review6)" in result.stdout and f"ok Karla {sandbox.url}" in result.stdout


# -- 6: check ---------------------------------------------------------------------------------------------------
def test_check_refuses_a_str_from_check_naming_the_adapter(tmp_path: Path, sandbox) -> None:
    result = _run(_config(tmp_path, sandbox.url, "check_str"), "check")
    assert result.returncode == 2, result.stdout
    assert "review6_plugin.Review6.check() must return a list of str, not str" in result.stdout
    assert "\n    r\n" not in result.stdout  # not a letter a line


def test_check_lends_the_adapter_the_logger_that_names_the_source(tmp_path: Path, sandbox) -> None:
    result = _run(_config(tmp_path, sandbox.url, "check_log"), "check")
    line = next(json.loads(line) for line in result.stderr.splitlines() if "cursor format is old" in line)
    assert line.get("source") == "erp", line


def test_check_on_a_terminal_names_the_source_while_it_waits_for_it() -> None:
    from connector.commands import _checking  # noqa: PLC0415

    out = Console(file=StringIO(), force_terminal=True, width=100)
    with _checking(out, "source erp (review6)"):
        assert "checking source erp (review6) ..." in out.file.getvalue()  # type: ignore[attr-defined]


def test_an_unknown_type_names_its_table() -> None:
    with pytest.raises(ConfigError, match=r"sources\.other\.type: unknown source type 'nope'; installed adapters: .*csv"):
        registry.validate_source("other", {"type": "nope"})


# -- 4: one name, two packages ----------------------------------------------------------------------------------
def _twins(tmp_path: Path, name: str, packages: list[str]) -> list:
    return [ep for dist in packages
            for ep in PathDistribution(_package(tmp_path, dist, dist.replace("-", "_"), "", {name: f"{dist.replace('-', '_')}:A"}))
            .entry_points]


def _resolved(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, found: list, name: str) -> tuple[str, str]:
    """The entry point used for ``name`` when packages are found in the order ``found``, and the warning logged."""
    monkeypatch.setattr(registry, "entry_points", lambda group: found)
    monkeypatch.setattr(registry, "_WARNED", set())
    caplog.clear()
    with caplog.at_level("WARNING", logger="connector.registry"):
        used = registry._entry_points()[name].value
    return used, caplog.text


def test_a_plugin_named_like_a_built_in_adapter_never_replaces_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    ours = [ep for ep in registry.entry_points(group=registry.GROUP) if ep.name == "csv"]
    plugin = _twins(tmp_path, "csv", ["fake-csv"])
    for found in (ours + plugin, plugin + ours):  # the file system decides the order packages are found in
        used, said = _resolved(monkeypatch, caplog, found, "csv")
        assert used == "adapters.csv:CsvAdapter"
        assert "adapters.csv:CsvAdapter (karla-connector) is used, the built-in one; fake_csv:A (fake-csv)" in said


def test_two_plugins_of_one_name_resolve_alike_on_every_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    eps = _twins(tmp_path, "woo", ["woo-alpha", "woo-beta"])
    for found in (eps, eps[::-1]):
        used, said = _resolved(monkeypatch, caplog, found, "woo")
        assert used == "woo_beta:A"
        assert "woo_beta:A (woo-beta) is used, the last by package name; woo_alpha:A (woo-alpha) ignored" in said


# -- the engine tolerates what the kit refuses ------------------------------------------------------------------
@pytest.mark.parametrize("bad", [{"raw": "not json here"}, {"raw": ["a", "b"]}, {"reason": ValueError("bad")},
                                 {"location": Path("orders.jsonl")}])
def test_a_rejection_of_the_wrong_types_is_stored_as_text(tmp_path: Path, bad: dict) -> None:
    class Careless:
        type, Config = "kit", KitConfig

        def __init__(self, name, config, context) -> None: ...
        def streams(self) -> list[StreamSpec]: return [StreamSpec("orders")]

        def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
            yield Page(rejected=[Rejected(**{"location": "orders.jsonl", "reason": "bad", **bad})], cursor="3")

    db = open_state(tmp_path / "s.db")
    try:
        counts = sync_source(db, SourceRuntime("erp", Careless, KitConfig(), "shop"), clock=lambda: NOW)  # type: ignore[arg-type]
        with db.read() as conn:
            row = conn.exec_driver_sql("select location, reason, payload from dead_letter").fetchone()
    finally:
        db.close()
    assert counts.rejected == 1 and row[:2] == ("orders.jsonl", "bad"), row
    assert (json.loads(row[2]) if row[2] else None) == ({"raw": bad["raw"]} if "raw" in bad else None)
