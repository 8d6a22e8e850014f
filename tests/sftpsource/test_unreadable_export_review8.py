"""An export the connector's account may not open (written 0600 by the ERP's user, or held open by its writer)
is a failing source, not a WARNING every poll beside a healthy /readyz, `status` and `check` (ops8 review). The
other files are still read and delivered; the run then fails naming the file, `check` fails naming it, and
/readyz turns not-ready once it lasts ready_max_failure_seconds. The real CLI and daemon against a loopback
SFTP server that refuses to open the file (as a permission-denying server does: tests run as root here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SLUG, cli
from tests.integration.test_daemon import Daemon, free_port, wait_until
from tests.sftpsource.faultserver import FaultServer
from tests.sftpsource.test_sftp import HEADER, sftp_config


@pytest.fixture()
def faulty(sftp_root: Path) -> Iterator[FaultServer]:
    srv = FaultServer(sftp_root).start()
    yield srv
    srv.stop()


def _exports(sftp_root: Path) -> None:
    for n in range(3):
        (sftp_root / "exports" / f"orders_{n}.csv").write_text(f"{HEADER}\n{n + 1},10119,Name,SKU-{n},1,9.99\n")


def test_sync_status_and_check_fail_naming_the_file_and_pass_once_it_reads(faulty: FaultServer, sftp_root: Path,
                                                                          tmp_path: Path, sandbox) -> None:
    _exports(sftp_root)
    faulty.refuse = {"orders_1.csv": "deny"}
    config, env = sftp_config(faulty, tmp_path, sandbox.url)
    first = cli(config, "sync", env=env)
    assert first.returncode == 3, first.stderr  # before: 0, with a WARNING only
    assert sorted(sandbox.orders(SLUG)) == ["1", "3"]  # the other files read and delivered, as before
    assert "orders_1.csv cannot be read: SFTP " in first.stderr and "permission denied reading orders_1.csv" in first.stderr
    run = json.loads(cli(config, "status", "--json", env=env).stdout)["sources"]["warehouse"]["last_run"]
    assert run["status"] == "failed" and "orders_1.csv" in run["error"], run
    check = cli(config, "check", env=env)
    assert check.returncode == 2, check.stdout + check.stderr  # before: 0, "ok source warehouse ... 3 file(s) match"
    assert "FAILED source warehouse" in check.stdout and "permission denied reading orders_1.csv" in check.stdout

    faulty.refuse = {}  # read access granted
    assert cli(config, "check", env=env).returncode == 0
    again = cli(config, "sync", env=env)
    assert again.returncode == 0, again.stderr
    assert sorted(sandbox.orders(SLUG)) == ["1", "2", "3"]
    assert json.loads(cli(config, "status", "--json", env=env).stdout)["sources"]["warehouse"]["last_run"]["status"] == "ok"


def test_the_daemon_says_it_once_and_is_not_ready_once_it_lasts(faulty: FaultServer, sftp_root: Path, tmp_path: Path,
                                                                 sandbox) -> None:
    _exports(sftp_root)
    faulty.refuse = {"orders_1.csv": "fail"}  # a Windows server: the ERP still holds it open
    port = free_port()
    # the delivery timer an hour away: a failed run's queued orders go because it wakes the delivery
    config, _ = sftp_config(faulty, tmp_path, sandbox.url, poll_interval=0.2)
    text = config.read_text().replace("[sources.warehouse.sftp]\n", f'[sources.warehouse.sftp]\npassword = "{faulty.password}"\n')
    config.write_text(text + f"[daemon]\nhealth_port = {port}\ndelivery_interval = 3600\nready_max_failure_seconds = 1\n")
    daemon = Daemon(config, tmp_path)  # (it passes no KARLA_CONNECTOR_ variable: the password is in the file)
    try:
        daemon.wait_message("READY=1")
        assert sandbox.wait_for(lambda sb: sorted(sb.orders(SLUG)) == ["1", "3"], timeout=30)
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 503, what="not ready")
        problem = httpx.get(f"http://127.0.0.1:{port}/readyz").json()["problems"]["warehouse"]
        assert "orders_1.csv" in problem, problem
        wait_until(lambda: _polls(daemon.log_path) >= 3, what="three failed polls")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'karla_connector_sync_runs_total{source="warehouse",status="failed"}' in metrics
    finally:
        assert daemon.stop() == 0
    lines = [json.loads(line) for line in daemon.log_path.read_text().splitlines() if line.startswith("{")]
    said = [(r["level"], r["msg"]) for r in lines if "orders_1.csv cannot be read" in r["msg"]]
    assert [level for level, _ in said if level != "debug"] == ["error"], said  # before: a WARNING every poll
    assert said[0][1].startswith("source warehouse could not finish: orders_1.csv cannot be read: SFTP "), said


def _polls(log: Path) -> int:
    return sum("orders_1.csv cannot be read" in line and "could not finish" in line for line in log.read_text().splitlines())
