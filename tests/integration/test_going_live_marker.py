"""Which Karla acknowledged is told by the sandbox's mark on its answers, not by the address (review chg7a):
the real Karla reached through a loopback tunnel (stunnel, an SSH forward, a TLS sidecar at
http://127.0.0.1:PORT) is the real Karla, and the sandbox's file must not pass for its file there either.
``_RealKarla`` stands for the real Karla behind such a tunnel: it answers as Karla does, without the mark."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connector.sandbox import Sandbox
from tests.conftest import SLUG, cli, write_config, write_orders


class _RealKarla(ThreadingHTTPServer):
    """Takes every bulk upsert (200) and every search (an empty page), keeping the order numbers it took."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.orders: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    server: _RealKarla
    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        items = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.server.orders += [str(item["order"]["order_number"]) for item in items if item.get("order")]
        self._answer({"data": {"processed": len(items)}})

    def do_GET(self) -> None:  # noqa: N802
        self._answer({"data": [], "meta": {"page": 1, "per_page": 1, "total": 0}})

    def _answer(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture()
def real() -> Iterator[_RealKarla]:
    server = _RealKarla()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _query(state: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"{state.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _noted(state: Path) -> list[tuple]:
    return _query(state, "SELECT base_url, sandbox FROM karla_target")


def _delivered(state: Path) -> list[str]:
    return [key for (key,) in _query(state, "SELECT order_key FROM delivered WHERE part = 'order' ORDER BY 1")]


def test_the_sandboxs_file_against_the_real_karla_through_a_loopback_tunnel_is_refused(
    tmp_path: Path, sandbox: Sandbox, real: _RealKarla
) -> None:
    """Review chg7a (b): both on 127.0.0.1, so the address said nothing; the first answer without the mark stops
    delivery before anything of its batch counts as delivered."""
    files = tmp_path / "files"
    state = tmp_path / "state.db"
    files.mkdir()
    write_orders(files, "orders_001.csv", [1001])
    assert cli(write_config(tmp_path, sandbox.url), "sync").returncode == 0
    assert _noted(state) == [(sandbox.url, 1)] and _delivered(state) == ["1001"]
    write_orders(files, "orders_002.csv", [1002])
    done = cli(write_config(tmp_path, real.url), "sync", "--full")
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"the state file {state} holds what the Karla sandbox at {sandbox.url} (user {SLUG}) acknowledged" in said
    assert f"Karla at {real.url} answered without the sandbox's Karla-Sandbox header" in said, said
    assert "count as sent in this file" in said and "set [state] path to a new file" in said
    assert _delivered(state) == ["1001"] and _noted(state) == [(sandbox.url, 1)]  # 1002 reached it, not counted
    assert real.orders == ["1002"]  # 1001 never: the sandbox's acknowledgement stood for it


def test_a_production_file_through_a_loopback_tunnel_goes_live_directly_and_warns_once_the_sandbox_took_some(
    tmp_path: Path, sandbox: Sandbox, real: _RealKarla
) -> None:
    """Review chg7a (a): months through a tunnel on 127.0.0.1, then the direct URL: the file is the real Karla's
    and is not refused. (c): the same file run against the sandbox is noted so, aloud, not silently."""
    files = tmp_path / "files"
    state = tmp_path / "state.db"
    files.mkdir()
    write_orders(files, "orders_001.csv", [1001])
    assert cli(write_config(tmp_path, real.url), "sync").returncode == 0
    assert _noted(state) == [(real.url, 0)] and real.orders == ["1001"]
    done = cli(write_config(tmp_path, "https://karla.invalid"), "check")  # the direct URL: nothing to refuse
    assert "holds what" not in " ".join(done.stderr.split()), done.stderr  # (Karla unreachable is another matter)

    write_orders(files, "orders_002.csv", [1002])
    done = cli(write_config(tmp_path, sandbox.url), "sync")  # someone ran the production file against the sandbox
    assert done.returncode == 0, done.stdout + done.stderr
    warned = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(w["level"] == "warning" and f"the state file {state} held deliveries to Karla at {real.url}" in w["msg"]
               and "now the sandbox at" in w["msg"] for w in warned), done.stderr
    assert _noted(state) == [(sandbox.url, 1)]
    done = cli(write_config(tmp_path, "https://karla.invalid"), "check")
    assert done.returncode == 2 and "count as sent in this file" in done.stderr, done.stdout + done.stderr


def test_dlq_retry_of_the_sandboxs_file_against_the_real_karla_is_refused(
    tmp_path: Path, sandbox: Sandbox, real: _RealKarla
) -> None:
    """Review chg7a (c): `dlq retry` was never judged; its delivery is, like every drain's."""
    files = tmp_path / "files"
    state = tmp_path / "state.db"
    files.mkdir()
    write_orders(files, "orders_001.csv", [1001])
    write_orders(files, "orders_002.csv", [1002], zip_code="ABC")  # the sandbox refuses it: a Karla letter
    done = cli(write_config(tmp_path, sandbox.url), "sync")
    assert done.returncode == 1 and _delivered(state) == ["1001"], done.stdout + done.stderr
    done = cli(write_config(tmp_path, real.url), "dlq", "retry", "--all")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "answered without the sandbox's Karla-Sandbox header" in " ".join(done.stderr.split()), done.stderr
    assert _delivered(state) == ["1001"] and _noted(state) == [(sandbox.url, 1)]
