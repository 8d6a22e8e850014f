"""What an operator sees when something is wrong: real processes, real sockets, exit codes from the README.

0 ok, 1 dead letters in this run, 2 configuration or usage error, 3 could not finish, 4 internal error.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import API_KEY, cli, write_config
from tests.integration.test_daemon import Daemon, free_port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_") and k != "CREDENTIALS_DIRECTORY"}
    env.update(extra)
    return env


# -- exit 4: an internal error is not "records were dead-lettered" --------------------------------------

BOOM_PLUGIN = '''
from pydantic import field_validator

from adapters.base import SourceConfig


class Boom:
    """An adapter with a bug: its Config validator raises something that is not a validation error."""

    type = "boom"

    class Config(SourceConfig):
        type: str = "boom"
        token: str = ""

        @field_validator("token")
        @classmethod
        def _explode(cls, value: str) -> str:
            raise RuntimeError(f"plugin bug while checking token {value}")

    def check(self): ...
    def streams(self): ...
    def read(self, stream, cursor): ...
'''


@pytest.fixture()
def boom_plugin(tmp_path: Path) -> Path:
    """A third-party adapter installed the way pip would (a dist-info with an entry point), on PYTHONPATH."""
    site = tmp_path / "site"
    (site / "boom_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "boom_plugin.py").write_text(BOOM_PLUGIN)
    (site / "boom_plugin-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: boom-plugin\nVersion: 0.1\n")
    (site / "boom_plugin-0.1.dist-info" / "entry_points.txt").write_text("[karla_connector.adapters]\nboom = boom_plugin:Boom\n")
    return site


def _with_plugin(site: Path) -> str:
    return os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))


def _boom_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, "http://127.0.0.1:9", extra='[sources.buggy]\ntype = "boom"\ntoken = "tok-SECRET-4242"\n')


def test_unexpected_error_exits_4_with_one_line_and_no_secret(tmp_path: Path, boom_plugin: Path) -> None:
    config = _boom_config(tmp_path)
    result = cli(config, "sync", env={"PYTHONPATH": _with_plugin(boom_plugin), "KARLA_CONNECTOR_LOG__LEVEL": "INFO"})
    assert result.returncode == 4, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("internal error: RuntimeError: plugin bug while checking token")
    assert lines[0].endswith("(run with --debug for the traceback)")
    assert "tok-SECRET-4242" not in result.stdout + result.stderr and "***" in lines[0]  # masked like in logs
    assert API_KEY not in result.stdout + result.stderr

    # With [log].level = DEBUG (as in this config) the traceback also goes to the log, masked as well.
    logged = cli(config, "sync", env={"PYTHONPATH": _with_plugin(boom_plugin)})
    assert logged.returncode == 4
    assert '"msg": "internal error"' in logged.stderr and "boom_plugin.py" in logged.stderr
    assert "tok-SECRET-4242" not in logged.stderr


def test_debug_flag_prints_the_traceback_still_masked(tmp_path: Path, boom_plugin: Path) -> None:
    config = _boom_config(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "connector", "--debug", "--config", str(config), "sync"],
        capture_output=True, text=True, timeout=120, env=_env(PYTHONPATH=_with_plugin(boom_plugin)), cwd=tmp_path,
    )
    assert result.returncode == 4
    assert "Traceback (most recent call last)" in result.stderr and "boom_plugin.py" in result.stderr
    assert "tok-SECRET-4242" not in result.stderr
    assert "--debug for the traceback" not in result.stderr


def test_help_documents_every_exit_code(tmp_path: Path) -> None:
    result = cli(tmp_path / "unused.toml", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for code in ("0 all delivered", "1 records dead-lettered", "2 configuration error", "3 could not finish", "4 internal error"):
        assert code in text, text


# -- configuration files an operator gets wrong ---------------------------------------------------------

def test_missing_default_config_file_is_named_first(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "connector", "status"], capture_output=True, text=True,
                            timeout=120, env=_env(), cwd=tmp_path)
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert "karla-connector.toml" in first and "not found" in first and str(tmp_path) in first
    assert "--config" in first and "KARLA_CONNECTOR_CONFIG" in first
    assert "Traceback" not in result.stderr


@contextmanager
def _config_in_etc(folder_mode: int, file_mode: int) -> Iterator[tuple[Path, list[str]]]:
    """/etc/karla-connector as an install recipe leaves it, owned by root, read by the service's own user
    (what DynamicUser= amounts to). The files are our own, so "others may not read it" is emulated by
    taking every read bit away; as root, the command also runs without CAP_DAC_OVERRIDE/READ_SEARCH
    (setpriv), so those bits apply to it. (Running as nobody instead would need the checkout and its
    virtualenv readable by others, which a clone in a private temp folder is not.)"""
    base = Path(tempfile.mkdtemp(prefix="karla-etc-"))
    etc = base / "karla-connector"
    try:
        base.chmod(0o755)
        etc.mkdir()
        config = etc / "config.toml"
        config.write_text(f'[karla]\nshop_slug = "s"\napi_key = "k"\n[state]\npath = "{base / "state.db"}"\n')
        prefix: list[str] = []
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv: permission bits cannot be made to apply")
            prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
        if not file_mode & 0o004:
            file_mode = 0
        etc.chmod(folder_mode)
        config.chmod(file_mode)
        yield config, prefix
    finally:
        etc.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def _run_as_service_user(config: Path, prefix: list[str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cwd.chmod(0o777)  # a working directory the other user may use
    return subprocess.run([*prefix, sys.executable, "-m", "connector", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, env=_env(), cwd=cwd)


def test_unreadable_config_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    """The layout the old install recipe made (folder 0750, file 0640, root's): exit 2, no traceback."""
    with _config_in_etc(0o750, 0o640) as (config, prefix):
        result = _run_as_service_user(config, prefix, tmp_path, "status")
    assert result.returncode == 2, result.stderr  # exit 2: RestartPreventExitStatus=2, no restart loop
    assert "Traceback" not in result.stderr
    assert f"cannot read config file {config}" in result.stderr and "Permission denied" in result.stderr
    assert "0644" in result.stderr and "LoadCredential" in result.stderr


def test_documented_config_layout_is_readable_by_the_service_user(tmp_path: Path) -> None:
    """The layout deploy/karla-connector.service documents (folder 0755, file 0644): the config loads, and
    the command goes on to the next thing it needs (here: a state file nothing has written yet)."""
    with _config_in_etc(0o755, 0o644) as (config, prefix):
        result = _run_as_service_user(config, prefix, tmp_path, "status")
    assert "cannot read config file" not in result.stderr
    assert result.returncode == 2 and "state file" in result.stderr, result.stderr


# -- the daemon: health port, lag of sources that never succeeded ----------------------------------------

def test_health_port_in_use_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, "http://127.0.0.1:9", extra=f"[daemon]\nhealth_port = {port}\n")
        result = cli(config, "run", timeout=60)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    assert "Traceback" not in result.stderr
    assert f"[daemon].health_host:health_port 127.0.0.1:{port}" in result.stderr
    assert "KARLA_CONNECTOR_DAEMON__HEALTH_PORT" in result.stderr and "in use" in result.stderr


def test_a_source_that_never_succeeded_has_a_lag_series(tmp_path: Path, sandbox) -> None:
    """Without it a lag alert could never fire for a source that is broken from the start."""
    port = free_port()
    config = write_config(
        tmp_path, sandbox.url,
        extra=(f'[sources.broken]\ntype = "csv"\nurl = "file://{tmp_path / "no-such-folder"}"\n'
               f'[sources.off]\ntype = "csv"\nurl = "file://{tmp_path}"\nenabled = false\n'
               f"[daemon]\nhealth_port = {port}\n"),
    )
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log_path.read_text()[-3000:]
    assert 'karla_connector_source_lag_seconds{source="broken"}' in metrics, metrics
    assert 'karla_connector_source_lag_seconds{source="off"}' not in metrics  # disabled: not polled, no alert


def test_lag_of_a_never_successful_source_counts_from_the_daemon_start(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from connector.app import Connector
    from connector.daemon import Daemon as InProcess
    from connector.settings import load_settings

    config = write_config(tmp_path, "http://127.0.0.1:9",
                          extra=f'[sources.broken]\ntype = "csv"\nurl = "file://{tmp_path / "no-such-folder"}"\n')
    now = [datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)]
    connector = Connector(load_settings(config), clock=lambda: now[0])
    try:
        daemon = InProcess(connector)
        daemon._sync_job(connector.sources["broken"], False)  # stops: the folder does not exist
        now[0] += timedelta(seconds=90)
        metrics = daemon._metrics_text().decode()
    finally:
        connector.close()
    assert 'karla_connector_sync_runs_total{source="broken",status="fatal"} 1.0' in metrics
    assert 'karla_connector_source_lag_seconds{source="broken"} 90.0' in metrics
    assert 'karla_connector_source_lag_seconds{source="warehouse"} 90.0' in metrics  # not synced yet either
