"""Operations review: shutdown past the grace period, secrets in every output, commands beside the service,
signals and exit codes, scheduler noise and the autumn DST night. Real processes wherever a daemon or the
CLI is involved; plugins are installed the way pip would (a dist-info with an entry point) on PYTHONPATH."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import API_KEY, cli, write_config, write_orders
from tests.integration.test_daemon import Daemon, wait_until

PLUGIN = '''
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr

from adapters.base import Page, Rejected, SourceConfig, StreamSpec
from connector.errors import ConfigError


class Login(BaseModel):
    code: SecretStr


class LeakyConfig(SourceConfig):
    type: Literal["leaky"] = "leaky"
    auth: SecretStr          # a secret whose key names no secret
    login: Login             # and one nested in a table
    fail: str = "bug"
    sort_key: str = "updated_at"  # a plain setting whose name ends in "key"


class Leaky:
    """What a real ERP client library does: its errors echo the request, credentials included."""

    type = "leaky"
    Config = LeakyConfig

    def __init__(self, name, config, context):
        self.config = config

    def _message(self):
        c = self.config
        return f"ERP refused GET /orders?auth={c.auth.get_secret_value()}&code={c.login.code.get_secret_value()}"

    def check(self):
        raise ConfigError(self._message())

    def streams(self):
        return [StreamSpec("orders")]

    def read(self, stream, cursor):
        if self.config.fail == "config":
            raise ConfigError(self._message())
        if self.config.fail == "reject":  # a record refused with the library's message
            reason = f"{self._message()} (sorted by {self.config.sort_key})"
            yield Page(rejected=[Rejected(location="erp:/orders/7", reason=reason, key="7")], cursor="done")
            return
        raise RuntimeError(self._message())
        yield


class StuckConfig(SourceConfig):
    type: Literal["stuck"] = "stuck"
    marker: str


class Stuck:
    """A source request that never returns (no retry pause, so AdapterContext.stop cannot end it)."""

    type = "stuck"
    Config = StuckConfig

    def __init__(self, name, config, context):
        self.config = config

    def check(self):
        return ["ok"]

    def streams(self):
        return [StreamSpec("orders")]

    def read(self, stream, cursor):
        Path(self.config.marker).write_text("reading")
        threading.Event().wait()
        yield
'''

AUTH = "erp-auth-7c1d93"
CODE = "login-code-4e8b21"


def _install(site: Path, name: str, module: str, source: str, entry_points: str) -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (site / f"{module}.py").write_text(source)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[karla_connector.adapters]\n{entry_points}\n")


@pytest.fixture()
def plugin_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """PYTHONPATH with the test plugins, for `cli(env=...)` and (through os.environ) for ``Daemon``."""
    site = tmp_path / "site"
    _install(site, "ops_plugin", "ops_plugin", PLUGIN, "leaky = ops_plugin:Leaky\nstuck = ops_plugin:Stuck")
    _install(site, "gone_plugin", "gone_plugin", "raise ImportError('a dependency is missing')\n", "gone = gone_plugin:Gone")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    return {"PYTHONPATH": path}


def _daemon_config(tmp_path: Path, url: str, sources: str, grace: float = 10) -> Path:
    config = write_config(tmp_path, url, source={"poll_interval": 0.2},
                          extra=f"[daemon]\nhealth_port = 0\ndelivery_interval = 0.2\nshutdown_grace_seconds = {grace}\n{sources}")
    return config


def _lock_is_free(tmp_path: Path) -> bool:
    fd = os.open(tmp_path / "state.db.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


# -- 1: the grace period ends the process, and the lock goes with it --------------------------------------

def test_grace_period_ends_the_process_and_the_lock_is_held_until_then(tmp_path: Path, sandbox, plugin_env: dict[str, str]) -> None:
    marker = tmp_path / "reading"
    config = _daemon_config(tmp_path, sandbox.url, f'[sources.erp]\ntype = "stuck"\nmarker = "{marker}"\n', grace=1)
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        wait_until(marker.exists, timeout=30, what="the stuck read to start")
        daemon.proc.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        while daemon.proc.poll() is None and time.monotonic() - asked < 15:
            if _lock_is_free(tmp_path):
                # Free while the process still runs (its job still committing) is the defect.
                assert daemon.proc.poll() is not None, "the state lock was released while the daemon still ran"
            try:
                daemon.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        exited = time.monotonic() - asked
    finally:
        code = daemon.stop()
    logs = daemon.log_path.read_text()
    assert code == 0 and exited < 10, f"exit {code} after {exited:.1f} s: {logs[-2000:]}"
    assert _lock_is_free(tmp_path)
    assert "after the grace period" in logs and "daemon stopped" in logs


# -- 2: secrets never reach any output, whatever the key is called -----------------------------------------

def _leaky_config(tmp_path: Path, url: str) -> Path:
    tables = (f'[sources.bug]\ntype = "leaky"\nauth = "{AUTH}"\n[sources.bug.login]\ncode = "{CODE}"\n'
              f'[sources.refused]\ntype = "leaky"\nauth = "{AUTH}"\nfail = "config"\n[sources.refused.login]\ncode = "{CODE}"\n')
    return write_config(tmp_path, url, extra=tables)


def test_secret_fields_are_masked_in_logs_tables_status_check_and_the_state_file(tmp_path: Path, sandbox, plugin_env: dict[str, str]) -> None:
    config = _leaky_config(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    env = {**plugin_env, "COLUMNS": "400"}  # tables unwrapped: a secret folded over two lines would hide
    runs = [cli(config, *args, env=env) for args in (["sync"], ["sync", "--dry-run"], ["check"])]
    sync, dry, check = runs
    assert sync.returncode == 2 and check.returncode == 2, sync.stdout + sync.stderr
    assert "ERP refused" in sync.stdout and "ERP refused" in sync.stderr and "ERP refused" in check.stdout
    with sqlite3.connect(tmp_path / "state.db") as conn:
        errors = [row[0] for row in conn.execute("SELECT error FROM run WHERE error IS NOT NULL")]
    assert len(errors) == 2 and all("***" in e for e in errors), errors
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert AUTH.encode() not in stored and CODE.encode() not in stored
    # A run error stored by an earlier version, before errors were masked, is masked when shown.
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("UPDATE run SET error = ? WHERE source = 'bug'", (f"RuntimeError('ERP refused auth={AUTH}')",))
    status_json, status_text = cli(config, "status", "--json", env=env), cli(config, "status", env=env)
    assert json.loads(status_json.stdout)["sources"]["bug"]["last_run"]["error"] == "RuntimeError('ERP refused auth=***')"
    for run in [*runs, status_json, status_text]:
        for secret in (AUTH, CODE, API_KEY):
            assert secret not in run.stdout + run.stderr, (run.args, run.stdout, run.stderr)


def test_a_dead_letter_holding_a_plugin_secret_is_masked_when_stored_and_listed(tmp_path: Path, sandbox, plugin_env: dict[str, str]) -> None:
    tables = (f'[sources.rej]\ntype = "leaky"\nauth = "{AUTH}"\nfail = "reject"\nsort_key = "placed_desc"\n'
              f'[sources.rej.login]\ncode = "{CODE}"\n')
    config = write_config(tmp_path, sandbox.url, extra=tables)
    env = {**plugin_env, "COLUMNS": "400"}
    assert cli(config, "sync", env=env).returncode == 1  # finished, with a dead letter
    listed = [cli(config, "dlq", "list", env=env), cli(config, "dlq", "list", "--json", env=env)]
    assert "ERP refused GET /orders?auth=***" in listed[1].stdout, listed[1].stdout
    assert "(sorted by placed_desc)" in listed[1].stdout  # a validated table: its plain *_key setting is no secret
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    for secret in (AUTH, CODE):
        assert secret.encode() not in stored
        assert all(secret not in r.stdout + r.stderr for r in listed)


def test_a_table_that_does_not_validate_has_its_secret_named_values_masked() -> None:
    from connector.logs import redact
    from connector.registry import register_source_secrets

    register_source_secrets({"bad": {"type": "csv", "unknown": 1, "api_token": "tok-998877"}})
    assert redact("token tok-998877") == "token ***"


def test_status_needs_neither_the_api_key_nor_a_source_secret(tmp_path: Path, sandbox, plugin_env: dict[str, str]) -> None:
    """Under systemd both are LoadCredential= files only the service reads; `status` in a shell beside it works."""
    config = _leaky_config(tmp_path, sandbox.url)
    assert cli(config, "sync", env=plugin_env).returncode == 2
    bare = tmp_path / "bare.toml"
    bare.write_text("\n".join(line for line in config.read_text().splitlines() if not line.startswith(("api_key", "auth"))))
    result = cli(bare, "status", "--json", env=plugin_env)
    assert result.returncode == 0, result.stderr
    sources = json.loads(result.stdout)["sources"]
    assert sources["bug"]["type"] == "leaky" and sources["bug"]["last_run"]["status"] == "failed"


def test_paths_and_fingerprints_are_not_masked_but_secret_named_keys_are() -> None:
    from connector.logs import named_secrets

    table = {"w": {"url": "sftp://merchant@host/x", "sftp": {
        "private_key_file": "/etc/karla-connector/id_ed25519", "host_key_fingerprint": "SHA256:abcdefghijk",
        "password": "pw-1234", "private_key": "-----BEGIN KEY-----", "passphrase": "phrase-99"}},
        "s": {"access_token": "shpat_1", "client_secret": "cs_2", "api-key": "ak_3"}}
    assert sorted(named_secrets(table)) == sorted(["pw-1234", "-----BEGIN KEY-----", "phrase-99", "shpat_1", "cs_2", "ak_3"])


# -- 3 and 4: commands beside the service, exit 75 for a held lock, SIGHUP --------------------------------

def test_beside_the_service_status_and_dlq_need_no_key_and_a_held_lock_exits_75(tmp_path: Path, sandbox) -> None:
    config = _daemon_config(tmp_path, sandbox.url, "")
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    # An operator's shell under systemd: the API key is the service's LoadCredential= file, not readable here.
    keyless = tmp_path / "keyless.toml"
    keyless.write_text("\n".join(line for line in config.read_text().splitlines() if not line.startswith("api_key")))
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        for args in (["status", "--json"], ["dlq", "list"], ["status"]):
            result = cli(keyless, *args)
            assert result.returncode == 0, (args, result.stderr)
        dropped = cli(keyless, "dlq", "drop", "999")
        assert dropped.returncode == 2 and "named no dead letter" in dropped.stderr, dropped.stderr
        for args in (["dlq", "retry", "--all"], ["sync"]):
            held = cli(config, *args)
            assert held.returncode == 75, (args, held.stderr)
            assert "in use by pid" in held.stderr and "systemctl stop karla-connector" in held.stderr
        assert cli(keyless, "sync").returncode == 2  # a command that sends still needs the key
    finally:
        code = daemon.stop()
    assert code == 0


def test_sighup_stops_the_daemon_cleanly(tmp_path: Path, sandbox) -> None:
    config = _daemon_config(tmp_path, sandbox.url, "")
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        daemon.proc.send_signal(signal.SIGHUP)
        code = daemon.proc.wait(timeout=30)
    finally:
        daemon.stop()
    logs = daemon.log_path.read_text()
    assert code == 0, logs[-2000:]
    assert "received SIGHUP" in logs and "daemon stopped" in logs


def test_under_nohup_sighup_leaves_the_daemon_running(tmp_path: Path, sandbox) -> None:
    # `nohup karla-connector run &` ignores SIGHUP so that logging out does not end it: our handler must not
    # replace that ignore.
    config = _daemon_config(tmp_path, sandbox.url, "")
    daemon = Daemon(config, tmp_path, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        daemon.wait_message("READY=1")
        daemon.proc.send_signal(signal.SIGHUP)
        with daemon.arrived:
            seen = len(daemon.messages)  # the watchdog pings go on: the process lives and loops
            assert daemon.arrived.wait_for(lambda: daemon.messages[seen:].count("WATCHDOG=1") >= 2, timeout=30)
        assert daemon.proc.poll() is None
    finally:
        code = daemon.stop()
    assert code == 0 and "received SIGHUP" not in daemon.log_path.read_text()


def test_a_job_overrunning_for_half_an_hour_is_warned_about_once(tmp_path: Path, sandbox, caplog: pytest.LogCaptureFixture) -> None:
    # Overlapping turns are quiet (DEBUG), so a request that never returns went unnoticed: after 30 minutes
    # of skipped turns one warning says so; the job's end starts over.
    from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, JobEvent, JobExecutionEvent

    from connector.app import Connector
    from connector.daemon import Daemon as InProcess
    from connector.settings import load_settings

    now = [datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)]
    connector = Connector(load_settings(write_config(tmp_path, sandbox.url)), clock=lambda: now[0])
    daemon = InProcess(connector)
    skipped = lambda: daemon._on_job_event(JobEvent(EVENT_JOB_MAX_INSTANCES, "sync:warehouse", "default"))  # noqa: E731
    try:
        with caplog.at_level(logging.DEBUG, logger="connector.daemon"):
            for minutes in (0, 10, 29, 31, 45, 90):
                now[0] = datetime(2026, 12, 7, 8, minutes % 60, tzinfo=timezone.utc) + timedelta(hours=minutes // 60)
                skipped()
            daemon._on_job_event(JobExecutionEvent(EVENT_JOB_EXECUTED, "sync:warehouse", "default", now[0]))
            skipped()
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "sync:warehouse has been running for 31 minutes" in warnings[0], warnings
    finally:
        connector.close()


def test_a_poll_while_the_full_sync_reads_returns_at_once(tmp_path: Path, sandbox) -> None:
    # It used to wait on the source's lock for the whole full sync (hours for a big shop), a worker thread
    # held and every turn skipped; the full sync covers it, so the poll returns. A full sync still waits.
    import threading

    from connector.app import Connector
    from connector.daemon import Daemon as InProcess
    from connector.settings import load_settings

    connector = Connector(load_settings(write_config(tmp_path, sandbox.url)))
    daemon = InProcess(connector)
    rt = connector.sources["warehouse"]
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    try:
        with daemon._source_locks[rt.name]:  # the full sync is reading
            poll = threading.Thread(target=daemon._sync_job, args=(rt, False), daemon=True)
            poll.start()
            poll.join(timeout=30)
            assert not poll.is_alive()
        assert sandbox.orders("test-shop") == {}  # it read nothing
        daemon._sync_job(rt, False)
        assert set(sandbox.orders("test-shop")) == {"1"}
    finally:
        connector.close()


def test_help_names_exit_code_75() -> None:
    result = subprocess.run([sys.executable, "-m", "connector", "--help"], capture_output=True, text=True, timeout=60)
    assert "75 state file in use" in " ".join(result.stdout.split())


# -- 5 and 6: a plugin's bug is logged with its type and traceback; overlapping turns are quiet -----------

def test_daemon_logs_a_plugin_bug_with_type_and_traceback_and_overlaps_quietly(tmp_path: Path, sandbox, plugin_env: dict[str, str]) -> None:
    marker = tmp_path / "reading"
    sources = (f'[sources.erp]\ntype = "stuck"\nmarker = "{marker}"\npoll_interval = 0.1\n'
               f'[sources.bug]\ntype = "leaky"\nauth = "{AUTH}"\npoll_interval = 0.1\n[sources.bug.login]\ncode = "{CODE}"\n')
    config = _daemon_config(tmp_path, sandbox.url, sources, grace=0.5)
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        wait_until(lambda: "sync:erp is still running; this turn is skipped" in daemon.log_path.read_text(), timeout=30,
                   what="an interval coming round while the stuck read goes on")
        wait_until(lambda: "source bug failed: RuntimeError(" in daemon.log_path.read_text(), timeout=30, what="the bug")
    finally:
        daemon.stop()
    lines = [json.loads(line) for line in daemon.log_path.read_text().splitlines() if line.startswith("{")]
    bug = next(e for e in lines if e["msg"].startswith("source bug failed"))
    assert "Traceback" in bug["exc"] and "ops_plugin.py" in bug["exc"] and bug["level"] == "error"
    assert not any("maximum number of running instances" in e["msg"] for e in lines)
    assert not any(AUTH in line or CODE in line for line in daemon.log_path.read_text().splitlines())


# -- 7: the nightly full sync runs once on the night the clocks go back -----------------------------------

def test_nightly_cron_fires_once_on_the_autumn_dst_night() -> None:
    from connector.daemon import cron_trigger

    berlin = ZoneInfo("Europe/Berlin")
    for expression in ("30 2 * * *", "0 2 * * *", "0 3 * * *"):
        trigger = cron_trigger(expression, "Europe/Berlin")
        now, previous, fires = datetime(2026, 10, 24, 12, tzinfo=berlin), None, []
        for _ in range(3):  # the scheduler asks with the last fire time and the clock a moment after it
            previous = trigger.get_next_fire_time(previous, now)
            fires.append(previous)
            now = (previous.astimezone(timezone.utc) + timedelta(seconds=5)).astimezone(berlin)
        days = [f.astimezone(berlin).day for f in fires]
        assert days == [25, 26, 27], (expression, fires)
    twice = cron_trigger("0,30 2 * * *", "Europe/Berlin")  # two times in the repeated hour: each once
    now, previous, fires = datetime(2026, 10, 24, 12, tzinfo=berlin), None, []
    for _ in range(6):
        previous = twice.get_next_fire_time(previous, now)
        fires.append(previous.astimezone(berlin).strftime("%d %H:%M"))
        now = (previous.astimezone(timezone.utc) + timedelta(seconds=5)).astimezone(berlin)
    assert fires == ["25 02:00", "25 02:30", "26 02:00", "26 02:30", "27 02:00", "27 02:30"], fires
    spring = cron_trigger("30 2 * * *", "Europe/Berlin")  # 02:30 does not exist that night: still one run
    first = spring.get_next_fire_time(None, datetime(2026, 3, 28, 12, tzinfo=berlin))
    second = spring.get_next_fire_time(first, first + timedelta(seconds=5))
    assert [first.astimezone(berlin).day, second.astimezone(berlin).day] == [29, 30], (first, second)


# -- 8 and 9: exit codes and messages ----------------------------------------------------------------------

def test_a_broken_plugin_makes_sync_exit_2_like_check(tmp_path: Path, sandbox, plugin_env: dict[str, str]) -> None:
    config = write_config(tmp_path, sandbox.url, extra='[sources.erp]\ntype = "gone"\n')
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    sync, check = cli(config, "sync", env=plugin_env), cli(config, "check", env=plugin_env)
    assert (sync.returncode, check.returncode) == (2, 2), sync.stdout + sync.stderr
    assert "failed to load" in sync.stdout and len(sandbox.orders("test-shop")) == 1  # the other source still ran


def test_sync_without_sources_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "k.toml"
    config.write_text(f'[karla]\nshop_slug = "s"\napi_key = "{API_KEY}"\n[state]\npath = "{tmp_path / "state.db"}"\n')
    result = cli(config, "sync")
    assert result.returncode == 2 and "no [sources.NAME] table" in result.stderr, result.stderr


def test_missing_karla_table_names_the_variables_that_set_it(tmp_path: Path) -> None:
    config = tmp_path / "k.toml"
    config.write_text(f'[state]\npath = "{tmp_path / "state.db"}"\n')
    result = cli(config, "check")
    assert result.returncode == 2
    assert "KARLA_CONNECTOR_KARLA__SHOP_SLUG" in result.stderr and "KARLA_CONNECTOR_KARLA__API_KEY" in result.stderr


def test_config_option_after_the_command_gets_a_hint(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "connector", "status", "--config", str(tmp_path / "k.toml")],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2 and "--config goes before the command" in result.stderr, result.stderr


def test_sandbox_prints_its_karla_snippet_verbatim(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "connector", "sandbox", "--port", "0"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert lines[1].strip() == "[karla]" and lines[2].strip().startswith('base_url = "http://127.0.0.1:'), lines


def test_the_sandbox_snippet_names_a_loopback_url_when_it_listens_on_every_address() -> None:
    from connector.cli import connect_url
    from connector.settings import KarlaSettings

    for bound, shown in (("http://0.0.0.0:8080", "http://127.0.0.1:8080"), ("http://[::]:8080", "http://[::1]:8080"),
                         ("http://127.0.0.1:8080", "http://127.0.0.1:8080")):
        assert connect_url(bound) == shown
        assert KarlaSettings(base_url=connect_url(bound), shop_slug="s", api_key="k").base_url == shown  # type: ignore[arg-type]


def test_duplicate_adapter_names_are_warned_about(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from importlib.metadata import EntryPoint

    from connector import registry

    twins = [EntryPoint("twin", "pkg_a:Adapter", registry.GROUP), EntryPoint("twin", "pkg_b:Adapter", registry.GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: twins)
    monkeypatch.setattr(registry, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="connector.registry"):
        assert registry._entry_points()["twin"].value == "pkg_b:Adapter"
        registry._entry_points()
    warnings = [r.getMessage() for r in caplog.records if "two installed adapters" in r.getMessage()]
    assert len(warnings) == 1 and "pkg_a:Adapter" in warnings[0] and "pkg_b:Adapter" in warnings[0]
