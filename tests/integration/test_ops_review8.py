"""Review ops8 as an operator meets it: `status` says why a source failed, HEAD probes are answered,
`run`'s refusals come as JSON lines with a JSON log, and a read-only state folder gets the systemd fix."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from connector.health import HealthServer
from tests.conftest import cli, write_config
from tests.integration.test_daemon import Daemon, free_port


def _config(tmp_path: Path, sandbox, port: int) -> Path:  # noqa: ANN001
    return write_config(tmp_path, sandbox.url, source={"poll_interval": 0.3},
                        extra=f"[daemon]\nhealth_port = {port}\ndelivery_interval = 0.3\nshutdown_grace_seconds = 10\n")


def test_status_text_says_why_a_source_failed(tmp_path: Path, sandbox) -> None:  # noqa: ANN001
    config = _config(tmp_path, sandbox, 0)
    shutil.rmtree(tmp_path / "files")
    cli(config, "sync")
    out = cli(config, "status", env={"COLUMNS": "250"}).stdout
    assert "  warehouse: " in out and "does not exist" in out, out  # only `status --json` had last_run.error
    with sqlite3.connect(tmp_path / "state.db") as conn:  # the next poll runs (or was cut short): no error of its own
        columns = [c[1] for c in conn.execute("PRAGMA table_info(run)") if c[1] != "id"]
        picked = ", ".join("'running'" if c == "status" else "NULL" if c in ("error", "finished_at") else c for c in columns)
        conn.execute(f"INSERT INTO run ({', '.join(columns)}) SELECT {picked} FROM run ORDER BY id DESC LIMIT 1")
    out = cli(config, "status", env={"COLUMNS": "250"}).stdout
    assert "warehouse: the last finished run failed at " in out and "does not exist" in out, out
    last = json.loads(cli(config, "status", "--json").stdout)["sources"]["warehouse"]
    assert last["last_run"]["error"] is None and "does not exist" in last["last_failure"]["error"]


def test_head_probes_are_answered_like_get_without_a_body() -> None:
    server = HealthServer("127.0.0.1", 0, lambda: (False, {"why": "x"}), lambda: b"karla_up 1\n").start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        for path, code in (("/healthz", 200), ("/readyz", 503), ("/metrics", 200), ("/nope", 404)):
            got, head = httpx.get(base + path), httpx.head(base + path)
            assert head.status_code == code == got.status_code and head.content == b"", (path, head)
            assert head.headers["content-length"] == str(len(got.content)), path
            assert head.headers["content-type"] == got.headers["content-type"]
    finally:
        server.stop()


def test_run_refuses_a_port_in_use_as_a_json_line_with_a_json_log(tmp_path: Path, sandbox) -> None:  # noqa: ANN001
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = _config(tmp_path, sandbox, busy.getsockname()[1])
        done = cli(config, "run", timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and "health_port" in entry["msg"] and "in use" in entry["msg"], entry


def test_run_refuses_a_held_lock_as_a_json_line_and_as_text_in_text_mode(tmp_path: Path, sandbox) -> None:  # noqa: ANN001
    port = free_port()
    config = _config(tmp_path, sandbox, port)
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        second = cli(config, "run", timeout=60)
        assert second.returncode == 75, second.stderr
        entry = json.loads(second.stderr.strip())
        assert entry["level"] == "error" and "in use by pid" in entry["msg"], entry
        config.write_text(config.read_text().replace('format = "json"', 'format = "text"'))
        plain = cli(config, "run", timeout=60)
        assert plain.returncode == 75 and plain.stderr.startswith("error: state file "), plain.stderr
    finally:
        daemon.stop()


def _can_mount_read_only(where: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(where)],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.parametrize("command", ["sync", "check"])
def test_a_read_only_state_folder_says_how_to_make_it_writable(tmp_path: Path, sandbox, command: str) -> None:  # noqa: ANN001
    ro = tmp_path / "state"
    ro.mkdir()
    if not _can_mount_read_only(ro):
        pytest.skip("no user namespace to mount a read-only folder in")
    config = write_config(tmp_path, sandbox.url)
    config.write_text(config.read_text().replace(str(tmp_path / "state.db"), str(ro / "state.db")))
    mounted = f"mount -t tmpfs -o ro tmpfs {ro} && exec {sys.executable} -m connector --config {config} {command}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", mounted], capture_output=True, text=True, timeout=60, env=env)
    said = done.stdout + done.stderr  # `check` reports on stdout
    assert done.returncode == 2, said
    assert "read-only file system" in said and "ReadWritePaths=" in said, said
    assert "check its mode" not in said and "not writable by this user" not in said


def test_a_read_only_state_file_says_how_to_make_it_writable(tmp_path: Path, sandbox) -> None:  # noqa: ANN001
    """Only the file mounted read-only (a container's `-v ./state.db:/data/state.db:ro`): no chown advice."""
    (tmp_path / "probe").mkdir()
    if not _can_mount_read_only(tmp_path / "probe"):
        pytest.skip("no user namespace to mount a read-only file in")
    config = write_config(tmp_path, sandbox.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
    first = subprocess.run([sys.executable, "-m", "connector", "--config", str(config), "sync"], capture_output=True,
                           text=True, timeout=60, env=env)
    assert first.returncode == 0, first.stderr
    state = tmp_path / "state.db"
    mounted = (f"mount --bind {state} {state} && mount -o remount,bind,ro {state} && "
               f"exec {sys.executable} -m connector --config {config} sync")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", mounted], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2, done.stderr
    assert "read-only file system" in done.stderr and "ReadWritePaths=" in done.stderr, done.stderr
    assert "chown" not in done.stderr
