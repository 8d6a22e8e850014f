"""Review findings ops5-5 (idle connections to the health port held a thread and a descriptor each, for
ever) and ops5-6/cli5-4 (`status` said nothing of a delivery that keeps failing). Real daemon and CLI
processes against the sandbox on loopback."""

from __future__ import annotations

import json
import selectors
import socket
import sqlite3
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import API_KEY, cli, write_config, write_orders
from tests.integration.test_daemon import Daemon, free_port, wait_until

IDLE = 200  # far more than the health server gives a thread at once (connector.health.MAX_CONNECTIONS)


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def _hung_up(socks: list[socket.socket], wanted: int, timeout: float) -> int:
    """How many of ``socks`` the server closed (end of stream), waiting until ``wanted`` are or ``timeout``."""
    closed = 0
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while closed < wanted and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                sel.unregister(key.fileobj)
                if key.fileobj.recv(1) == b"":  # type: ignore[union-attr]
                    closed += 1
    return closed


def _get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_idle_sockets_neither_pile_up_threads_nor_block_readyz(tmp_path: Path, sandbox) -> None:
    from connector.health import MAX_CONNECTIONS

    port = free_port()
    config = write_config(tmp_path, sandbox.url, extra=f"[daemon]\nhealth_port = {port}\n")
    daemon = Daemon(config, tmp_path)
    socks: list[socket.socket] = []
    try:
        daemon.wait_message("READY=1")
        assert _get(port, "/readyz") == 200
        before = _threads(daemon.proc.pid)
        for _ in range(IDLE):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))  # and send nothing
        # the oldest are closed to make room: every connection beyond the cap sees the end of its stream
        # (within less than the 10 s idle timeout, which would close them all anyway)
        closed = _hung_up(socks, IDLE - MAX_CONNECTIONS, timeout=9)
        assert closed >= IDLE - MAX_CONNECTIONS, closed
        # a closed connection's thread ends a moment after the close (later on a busy machine); the scheduler
        # may start a worker or two meanwhile
        bound = before + MAX_CONNECTIONS + 8
        wait_until(lambda: _threads(daemon.proc.pid) <= bound, timeout=5, what=f"at most {bound} threads")
        assert _get(port, "/readyz") == 200  # while the cap's worth of idle sockets stays open
        assert _get(port, "/healthz") == 200
    finally:
        for s in socks:
            s.close()
        assert daemon.stop() == 0


def test_a_silent_connection_is_closed_after_the_idle_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import connector.health as health

    monkeypatch.setattr(health, "IDLE_SECONDS", 0.3)
    server = health.HealthServer("127.0.0.1", 0, lambda: (True, {}), lambda: b"").start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as silent:
            silent.sendall(b"GET /readyz HT")  # half a request line, then nothing
            assert silent.recv(1024) == b""  # closed by the server (the 10 s socket timeout fails the test)
    finally:
        server.stop()


def _status(config: Path) -> dict:
    done = cli(config, "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _deliver_runs(tmp_path: Path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "state.db") as db:
        return db.execute("SELECT status, delivered, error FROM run WHERE kind = 'deliver' ORDER BY id").fetchall()


def test_status_shows_why_delivery_fails_and_when_it_went(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 1})
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    sandbox.faults.down = True
    assert cli(config, "sync").returncode == 3
    assert cli(config, "sync").returncode == 3  # the same failure again: one run, failing since the first
    data = _status(config)
    assert data["pending"] == 2 and data["delivery"]["status"] == "failed"
    assert "503" in data["delivery"]["error"], data["delivery"]
    assert data["delivery"]["started_at"] <= data["delivery"]["finished_at"]
    assert len(_deliver_runs(tmp_path)) == 1
    text = cli(config, "status").stdout
    assert "last delivery: failed at" in text and "503" in text, text

    sandbox.faults.down = False
    assert cli(config, "sync").returncode == 0
    ok = _status(config)["delivery"]
    assert ok["status"] == "ok" and ok["delivered"] == 2 and ok["error"] is None
    assert cli(config, "sync").returncode == 0  # nothing to send: no run, the last delivery still shows
    assert _status(config)["delivery"] == ok
    assert [run[0] for run in _deliver_runs(tmp_path)] == ["failed", "ok"]
    assert "last delivery: ok at" in cli(config, "status").stdout


def test_status_shows_a_refused_shop_and_a_refused_key(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 1})
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    sandbox.shops = {"another-shop"}
    assert cli(config, "sync").returncode == 2
    refused = _status(config)["delivery"]
    assert refused["status"] == "failed" and "shop_not_found" in refused["error"], refused

    sandbox.shops = None
    sandbox.credentials = {"test-shop": "a-different-key-0d9e"}  # the key was revoked
    assert cli(config, "sync").returncode == 2
    text = cli(config, "status").stdout
    assert "last delivery: failed" in text and "401" in text, text
    assert API_KEY not in text
    # one failing stretch (the shop refused, then the key): one run, with the newest error
    assert [run[0] for run in _deliver_runs(tmp_path)] == ["failed"] and "401" in _deliver_runs(tmp_path)[-1][2]


def test_a_daemon_whose_drains_fail_shows_one_failed_delivery_then_the_good_one(tmp_path: Path, sandbox) -> None:
    port = free_port()
    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 1}, source={"poll_interval": 0.3},
                          extra=f"[daemon]\nhealth_port = {port}\ndelivery_interval = 0.3\n")
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    sandbox.faults.down = True
    daemon = Daemon(config, tmp_path)
    try:
        daemon.wait_message("READY=1")
        assert sandbox.wait_for(lambda sb: sum(r.status == 503 for r in sb.requests) >= 3)  # three drains or more
        wait_until(lambda: _deliver_runs(tmp_path)[-1:] != [], what="a deliver run")
        failed = _status(config)["delivery"]
        assert failed["status"] == "failed" and "503" in failed["error"] and len(_deliver_runs(tmp_path)) == 1
        sandbox.faults.down = False
        assert sandbox.wait_for(lambda sb: "1" in sb.orders("test-shop"))
        wait_until(lambda: [r[0] for r in _deliver_runs(tmp_path)] == ["failed", "ok"], what="the good delivery")
    finally:
        assert daemon.stop() == 0
    assert _status(config)["delivery"]["delivered"] == 1
