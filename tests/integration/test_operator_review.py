"""What the operator-facing commands promise: `check` refuses what `sync` refuses, `run` refuses a config
without sources, `status` names its state file, the health server on IPv6, `dlq` with an id SQLite cannot
hold, and `check` naming the CSV files that wait for settle_seconds."""

from __future__ import annotations

import errno
import http.client
import json
import os
import socket
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import API_KEY, cli, write_config, write_orders

NOT_SQLITE = "file is not a database"


def _listing(folder: Path) -> dict[str, tuple[int, float]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime) for p in folder.iterdir() if p.is_file()}


def _newer_schema(state: Path) -> None:
    con = sqlite3.connect(state)
    con.execute("PRAGMA user_version = 999")  # as a later release leaves it, before a downgrade
    con.commit()
    con.close()


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (_newer_schema, "has schema version 999, newer than this release understands"),
        (lambda state: state.write_text("order,number\n1,2\n" * 20), NOT_SQLITE),
    ],
    ids=["newer-schema", "not-sqlite"],
)
def test_check_fails_on_a_state_file_sync_refuses_and_changes_nothing(tmp_path: Path, sandbox, make, said: str) -> None:
    config = write_config(tmp_path, sandbox.url)
    make(tmp_path / "state.db")
    before = _listing(tmp_path)
    check = cli(config, "check")
    assert check.returncode == 2 and "FAILED state file" in check.stdout and said in check.stdout, check.stdout
    assert _listing(tmp_path) == before  # no -wal, -shm or .lock left behind, the file untouched
    sync = cli(config, "sync")
    assert sync.returncode == 2 and said in sync.stderr, sync.stderr  # the same words, as promised


def test_check_fails_when_the_state_folder_is_below_a_regular_file(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    (tmp_path / "plain.txt").write_text("not a folder\n")
    env = {"KARLA_CONNECTOR_STATE__PATH": str(tmp_path / "plain.txt" / "sub" / "state.db")}
    check = cli(config, "check", env=env)
    assert check.returncode == 2 and "plain.txt is a file, not a folder" in check.stdout, check.stdout
    assert cli(config, "sync", env=env).returncode == 2


def test_check_fails_on_a_lock_file_this_user_cannot_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `sync` run as root leaves a root-owned ``.lock`` (README); as root the test cannot be that other
    user, so the open is refused as the kernel would refuse it."""
    from connector import commands

    state = tmp_path / "state.db"
    (tmp_path / "state.db.lock").write_text("pid 1 (sync)")
    real_open = os.open

    def refuse_lock(path: object, flags: int, *args: int) -> int:
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse_lock)
    ok, fact = commands._state_writable(state)
    assert not ok and f"cannot create {state}.lock (Permission denied)" in fact, fact
    assert not state.exists()


def test_check_still_passes_a_healthy_state_file_without_touching_it(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    assert cli(config, "sync").returncode == 0
    before = _listing(tmp_path)
    check = cli(config, "check")
    assert check.returncode == 0 and "exists, writable" in check.stdout, check.stdout + check.stderr
    assert _listing(tmp_path) == before


def test_run_without_sources_exits_2_as_sync_and_check_do(tmp_path: Path) -> None:
    config = tmp_path / "k.toml"
    config.write_text(f'[karla]\nshop_slug = "s"\napi_key = "{API_KEY}"\n[state]\npath = "{tmp_path / "state.db"}"\n'
                      "[daemon]\nhealth_port = 0\n")
    result = cli(config, "run", timeout=60)  # before the fix it idled "ready" until the timeout
    assert result.returncode == 2 and "no [sources.NAME] table is configured" in result.stderr, result.stderr
    assert not (tmp_path / "state.db").exists()


def test_status_names_the_absolute_state_path(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    assert cli(config, "sync").returncode == 0
    state = str(tmp_path / "state.db")
    human = cli(config, "status")
    assert state in human.stdout.splitlines()[0], human.stdout
    assert json.loads(cli(config, "status", "--json").stdout)["state_path"] == state


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_health_server_listens_on_ipv6_loopback() -> None:
    from connector.health import HealthServer

    server = HealthServer("::1", 0, lambda: (True, {}), lambda: b"").start()
    try:
        conn = http.client.HTTPConnection("::1", server.port, timeout=10)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        server.stop()


def test_only_a_port_in_use_is_blamed_on_another_program() -> None:
    from connector.health import HealthServer, listen_error

    family = socket.gaierror(socket.EAI_FAMILY, "Address family for hostname not supported")
    message = str(listen_error("::", 9308, family))
    assert "Address family for hostname not supported" in message and "using the port" not in message, message
    assert "KARLA_CONNECTOR_DAEMON__HEALTH_HOST" in message
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError) as caught:
            HealthServer("127.0.0.1", busy.getsockname()[1], lambda: (True, {}), lambda: b"")
    assert "using the port" in str(listen_error("127.0.0.1", 1, caught.value))


def test_dlq_ids_too_large_for_sqlite_name_no_letter(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [1])
    with (files / "orders_001.csv").open("a") as f:
        f.write("3,#3,not-a-date,x@example.com,EUR,1,1,A,B,10119,Berlin,DE,S,T,1,1\n")
    assert cli(config, "sync").returncode == 1
    huge = "99999999999999999999"
    drop = cli(config, "dlq", "drop", huge)
    assert drop.returncode == 2 and f"no dead letter with id {huge}" in drop.stderr, drop.stderr
    retry = cli(config, "dlq", "retry", huge)
    assert retry.returncode == 2 and f"no dead letter with id {huge}" in retry.stdout, retry.stdout + retry.stderr
    assert "queued 0 dead letter(s)" in retry.stdout  # not "no filter": the real letter was left alone
    assert len(json.loads(cli(config, "dlq", "list", "--json").stdout)) == 1


def test_check_names_the_csv_files_waiting_for_settle_seconds(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source={"settle_seconds": 3600})
    for n in range(1, 13):  # just written: all twelve wait an hour
        write_orders(tmp_path / "files", f"orders_{n:03}.csv", [n])
    check = cli(config, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "12 of them changed within settle_seconds (3600s)" in check.stdout, check.stdout
    line = next(x for x in check.stdout.splitlines() if "still settling:" in x)
    assert ", ".join(f"orders_{n:03}.csv" for n in range(1, 11)) + " and 2 more" in line, line
    assert "orders_011.csv" not in line
