"""The daemon's log during a Karla outage: one WARNING when delivery pauses, not one per drain (found by a soak:
81 identical lines in 150 s of outage, while /readyz already said so)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from connector.app import Connector
from connector.daemon import Daemon
from connector.sandbox import Faults
from connector.settings import load_settings
from tests.conftest import write_config, write_orders


def test_delivery_paused_is_a_warning_once_per_outage(tmp_path: Path, sandbox, caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 1})
    connector = Connector(load_settings(config), sleep=lambda _: None)
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    connector.sync_one(connector.sources["warehouse"])
    daemon = Daemon(connector)
    sandbox.faults = Faults(down=True)
    with caplog.at_level(logging.INFO, logger="connector.daemon"):
        for _ in range(3):
            daemon._deliver_job()
        sandbox.faults = Faults()
        daemon._deliver_job()
    said = [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records if r.name == "connector.daemon"]
    assert said == [("WARNING", "delivery paused"), ("INFO", "delivery paused"), ("INFO", "delivery paused"),
                    ("INFO", "delivery resumed")]
    connector.close()


def test_an_idle_poll_says_its_summary_at_debug_only(tmp_path: Path, sandbox, caplog: pytest.LogCaptureFixture) -> None:
    """A line per poll per source with nothing read (288 a day per source at the default interval, forever)
    drowned what mattered; a poll that read something still says so at INFO."""
    config = write_config(tmp_path, sandbox.url)
    connector = Connector(load_settings(config), sleep=lambda _: None)
    source = connector.sources["warehouse"]
    with caplog.at_level(logging.DEBUG, logger="connector.sync"):
        connector.sync_one(source)
        write_orders(tmp_path / "files", "orders_001.csv", [1])
        connector.sync_one(source)
        connector.sync_one(source)
    said = [(r.levelname, r.getMessage().split(",")[0]) for r in caplog.records if "parts queued" in r.getMessage()]
    assert said == [("DEBUG", "source warehouse: read 0 records (orders or their parcels)"),
                    ("INFO", "source warehouse: read 1 records (orders or their parcels)"),
                    ("DEBUG", "source warehouse: read 0 records (orders or their parcels)")]
    connector.close()


@pytest.mark.parametrize(("grace", "warned"), [(30, True), (31, False)])
def test_a_grace_no_longer_than_a_request_timeout_is_warned_about(tmp_path: Path, sandbox, caplog: pytest.LogCaptureFixture,
                                                                  grace: int, warned: bool) -> None:
    """0.1.0's example config set 30 s, Karla's request timeout: a stop then cut a request on the wire short."""
    config = write_config(tmp_path, sandbox.url, extra=f"[daemon]\nshutdown_grace_seconds = {grace}\n")
    connector = Connector(load_settings(config))
    with caplog.at_level(logging.WARNING, logger="connector.daemon"):
        Daemon(connector)._warn_short_grace()
    said = [r.getMessage() for r in caplog.records if "shutdown_grace_seconds" in r.getMessage()]
    assert said == ([f"[daemon] shutdown_grace_seconds = {grace}.0 is not longer than [karla] timeout_seconds = 30.0: a stop "
                     "may cut a request short and its work is done again; set it above 30.0"] if warned else [])
    connector.close()


def test_an_sftp_timeout_longer_than_the_grace_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An SFTP source keeps its timeout in its sftp table (connect, login and each read)."""
    config = tmp_path / "c.toml"
    config.write_text(
        '[karla]\nbase_url = "http://127.0.0.1:9"\nshop_slug = "s"\napi_key = "kkkkkkkk"\n'
        f'[state]\npath = "{tmp_path / "state.db"}"\n[daemon]\nshutdown_grace_seconds = 40\n'
        '[sources.ftp]\ntype = "csv"\nurl = "sftp://u@127.0.0.1:2222/out"\n'
        '[sources.ftp.sftp]\npassword = "pppppppp"\ninsecure_skip_host_key_check = true\ntimeout_seconds = 120\n')
    config.chmod(0o600)
    connector = Connector(load_settings(config))
    with caplog.at_level(logging.WARNING, logger="connector.daemon"):
        Daemon(connector)._warn_short_grace()
    said = [r.getMessage() for r in caplog.records if "shutdown_grace_seconds" in r.getMessage()]
    connector.close()
    assert said == ["[daemon] shutdown_grace_seconds = 40.0 is not longer than [sources.ftp.sftp] timeout_seconds = 120.0: "
                    "a stop may cut a request short and its work is done again; set it above 120.0"]
