"""A local export the service's user may not open (the ERP writes it 0600 under its own user) fails the source's
run after the other files are read, and fails `check` (ops8 review: a WARNING every poll while /readyz, `status`
and `check` said ok). Tests run as root here, which reads any file, so the refusal is simulated as
tests/sftpsource/test_faults.py does: the operating system's PermissionError from a real folder's open."""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.base import AdapterContext
from adapters.csv import CsvAdapter, CsvConfig
from adapters.csv.local import LocalFolder
from connector.app import Connector
from connector.daemon import Daemon
from connector.errors import ConfigError, RetryableError
from connector.readiness import Readiness
from connector.settings import load_settings
from state import Outbox, Runs
from tests.conftest import SLUG, write_config, write_fulfillments, write_orders

REFUSED = {"orders_002.csv", "fulfillments_001.csv"}


class _Refusing(LocalFolder):
    """A real folder whose ``REFUSED`` files this user may not read."""

    def open(self, name: str):  # type: ignore[no-untyped-def, override]
        if name in REFUSED:
            raise PermissionError(errno.EACCES, "Permission denied", str(self.root / name))
        return super().open(name)


@pytest.fixture()
def daemon(tmp_path: Path, sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Daemon, list[float]]]:
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive"})
    for n in (1, 2, 3):
        write_orders(files, f"orders_00{n}.csv", [n])
    write_fulfillments(files, "fulfillments_001.csv", ["1,T-1"])  # parcels are read first: their failure waits
    monkeypatch.setattr("adapters.csv.adapter.open_source", lambda config, log: _Refusing(files, log=log))
    connector = Connector(load_settings(config), sleep=lambda _: None)
    runner = Daemon(connector)
    now = [1000.0]
    runner.readiness = Readiness(connector, 600, clock=lambda: now[0])
    try:
        yield runner, now
    finally:
        connector.close()


def test_the_other_files_are_queued_and_the_run_fails_naming_the_unreadable(
        daemon: tuple[Daemon, list[float]], tmp_path: Path, caplog: pytest.LogCaptureFixture, sandbox) -> None:
    runner, now = daemon
    rt = runner.connector.sources["warehouse"]
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            runner._sync_job(rt, False)
    with runner.connector.db.read() as conn:
        last = Runs(conn).last("warehouse")
        pending = Outbox(conn).pending_by_source().get("warehouse", 0)
    assert last["status"] == "failed", last  # before: ok
    assert pending == 0  # orders 1 and 3: committed, they stand, and the failed run woke the delivery
    assert sorted(sandbox.orders(SLUG)) == ["1", "3"]
    assert sorted(p.name for p in (tmp_path / "files" / "archive").iterdir()) == ["orders_001.csv", "orders_003.csv"]
    assert last["error"].startswith("2 files cannot be read: folder ") and "fulfillments_001.csv is not readable" in last["error"]
    assert "orders_002.csv is not readable by this user (check its owner and mode)" in last["error"]
    said = [(r.levelname, r.getMessage()) for r in caplog.records if "cannot be read" in r.getMessage()]
    assert [level for level, _ in said] == ["ERROR", "DEBUG", "DEBUG"], said  # once while it lasts
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "cannot be read" not in r.getMessage()]
    assert runner.metrics.runs.labels(source="warehouse", status="failed")._value.get() == 3
    assert runner.readiness.check()[0] is True  # within ready_max_failure_seconds: it may pass
    now[0] += 601
    ready, body = runner.readiness.check()
    assert ready is False and "orders_002.csv" in body["problems"]["warehouse"]  # before: ready


def test_check_fails_naming_the_unreadable_files(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    write_orders(files, "orders_001.csv", [1])
    config = CsvConfig(url=f"file://{files}", settle_seconds=0)
    assert CsvAdapter("w", config, AdapterContext(source="w"), files=_Refusing(files)).check()  # all readable: facts
    write_orders(files, "orders_002.csv", [2])
    with pytest.raises(ConfigError, match=r"^orders_002\.csv cannot be read: folder .*orders_002\.csv is not readable "
                                          r"by this user \(check its owner and mode\); every sync reads the other files"):
        CsvAdapter("w", config, AdapterContext(source="w"), files=_Refusing(files)).check()  # before: "ok"


def test_a_read_of_one_stream_alone_ends_failing_only_after_the_last_stream(tmp_path: Path) -> None:
    """The engine reads the streams in ``streams()`` order: parcels first. Their unreadable file must not stop
    the orders from being read, so the error waits for the last stream."""
    files = tmp_path / "files"
    files.mkdir()
    write_orders(files, "orders_001.csv", [1])
    write_fulfillments(files, "fulfillments_001.csv", ["1,T-1"])
    adapter = CsvAdapter("w", CsvConfig(url=f"file://{files}", settle_seconds=0), AdapterContext(source="w"),
                         files=_Refusing(files))
    assert list(adapter.read("fulfillments", None)) == []
    pages = []
    with pytest.raises(RetryableError, match=r"^fulfillments_001\.csv cannot be read: .*tried again on every poll$"):
        pages.extend(adapter.read("orders", None))
    assert [r.key for p in pages for r in p.records] == ["1"]


def test_a_run_that_ended_between_the_streams_leaves_no_stale_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run stopped after the parcels (review chg8a): the next run's parcels read the file fine, and its
    orders must not fail naming the file the earlier run could not open."""
    files = tmp_path / "files"
    files.mkdir()
    write_orders(files, "orders_001.csv", [1])
    write_fulfillments(files, "fulfillments_001.csv", ["1,T-1"])
    adapter = CsvAdapter("w", CsvConfig(url=f"file://{files}", settle_seconds=0), AdapterContext(source="w"),
                         files=_Refusing(files))
    assert list(adapter.read("fulfillments", None)) == []  # refused: noted, the run ends here
    monkeypatch.setattr(f"{__name__}.REFUSED", set())  # readable now
    assert [m.path for p in adapter.read("fulfillments", None) for m in p.done_files] == ["fulfillments_001.csv"]
    assert [r.key for p in adapter.read("orders", None) for r in p.records] == ["1"]  # no error
