"""One source failing — an outage, a wrong setting, a bug in a plugin — must not stop the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import Record
from adapters.csv import CsvAdapter
from connector.app import Connector, ExitCode
from connector.errors import ConfigError
from connector.settings import load_settings
from state import Runs
from tests.conftest import SLUG, cli, write_config, write_orders


class _Buggy(CsvAdapter):
    def streams(self):  # type: ignore[no-untyped-def]
        raise KeyError("order_id")


class _Misconfigured(CsvAdapter):
    def streams(self):  # type: ignore[no-untyped-def]
        raise ConfigError("sources.warehouse: the token was refused")


class _Unbuildable(CsvAdapter):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("cannot start")


def two_sources(tmp_path: Path, url: str) -> Connector:
    second = tmp_path / "second"
    config = write_config(tmp_path, url, extra=f'[sources.second]\ntype = "csv"\nurl = "file://{second}"\nsettle_seconds = 0\n')
    second.mkdir()
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    write_orders(second, "orders_001.csv", [2])
    return Connector(load_settings(config))


@pytest.mark.parametrize(
    ("broken", "code", "said"),
    [(_Buggy, ExitCode.UNFINISHED, "KeyError: 'order_id'"), (_Misconfigured, ExitCode.CONFIG, "token was refused"),
     (_Unbuildable, ExitCode.UNFINISHED, "RuntimeError: cannot start")],
)
def test_a_failing_source_is_reported_and_the_others_are_still_delivered(tmp_path: Path, sandbox, broken: type, code: int, said: str) -> None:
    connector = two_sources(tmp_path, sandbox.url)
    connector.sources["warehouse"].adapter_cls = broken
    report = connector.sync()
    assert set(sandbox.orders(SLUG)) == {"2"} and report.exit_code == code
    assert said in {**report.failures, **report.fatal}["warehouse"]
    with connector.db.read() as conn:
        assert Runs(conn).last("warehouse")["status"] == "failed"  # type: ignore[index]  # never left "running"
    connector.close()


def test_check_reports_every_source_and_skips_disabled_ones(tmp_path: Path, sandbox) -> None:
    config = write_config(
        tmp_path, sandbox.url,
        extra=f'[sources.gone]\ntype = "csv"\nurl = "sftp://u@127.0.0.1:1/x"\nenabled = false\n'
              f'[sources.missing]\ntype = "csv"\nurl = "file://{tmp_path / "nope"}"\n',
    )
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    result = cli(config, "check")
    out = result.stdout
    assert result.returncode == ExitCode.CONFIG, out + result.stderr  # the missing folder is a setting to fix
    assert "disabled source gone" in out and "FAILED source missing" in out and "nope does not exist" in out
    assert "ok source warehouse" in out and f"ok Karla {sandbox.url}" in out  # the failure hides nothing else


def test_a_record_with_an_id_type_karla_does_not_know_is_refused_where_it_is_made() -> None:
    with pytest.raises(ValueError, match="id_type .*2026-01-03.* is not one of"):
        Record("P1", None, (), '["2026-01-03","P1"]')  # type: ignore[arg-type]  # positional: a cursor in id_type
    assert Record("P1", id_type="external_id").id_type == "external_id"


def test_a_disabled_source_named_on_the_command_line_is_read_with_a_warning(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source={"enabled": False})
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    assert cli(config, "sync").stdout.count("warehouse") == 0 and sandbox.orders(SLUG) == {}  # not read unnamed
    named = cli(config, "sync", "--source", "warehouse")
    assert named.returncode == 0 and set(sandbox.orders(SLUG)) == {"1"}
    assert "source warehouse has enabled = false; it is read because it was named" in named.stderr
