"""A server (a proxy, a debug gateway, a wrong base_url) echoing Karla's credentials in its error answer:
neither the API key nor the ``Authorization: Basic`` value it derives reaches what the CLI prints."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import API_KEY, SLUG, cli, write_config, write_orders

BASIC = base64.b64encode(f"{SLUG}:{API_KEY}".encode()).decode()  # what httpx sends for [karla] user:api_key

Echo = Callable[[str, str], str]  # (decoded "user:key", raw Authorization header) -> the 401's message


class EchoServer:
    """Answers every request 401 with a Karla-shaped body whose message echoes the credentials it got."""

    def __init__(self, echo: Echo) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                header = self.headers.get("Authorization") or ""
                decoded = base64.b64decode(header.removeprefix("Basic ")).decode() if header.startswith("Basic ") else ""
                raw = json.dumps({"key": None, "message": owner.echo(decoded, header)}).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_PUT = do_POST = _answer

            def log_message(self, *_args: object) -> None:
                pass

        self.echo = echo
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def echoing() -> Iterator[Callable[[Echo], EchoServer]]:
    started: list[EchoServer] = []

    def start(echo: Echo) -> EchoServer:
        started.append(EchoServer(echo))
        return started[-1]

    yield start
    for server in started:
        server.close()


def test_sync_and_check_mask_the_key_and_its_basic_value(tmp_path: Path, echoing: Callable[[Echo], EchoServer]) -> None:
    server = echoing(lambda decoded, header: f"bad creds {decoded} auth={header}")
    config = write_config(tmp_path, server.url)
    write_orders(tmp_path / "files", "orders.csv", [1])

    synced = cli(config, "sync")
    checked = cli(config, "check")
    status = cli(config, "status", "--json")

    for run in (synced, checked, status):
        shown = run.stdout + run.stderr
        assert API_KEY not in shown and BASIC not in shown
    assert synced.returncode == 2, synced.stderr
    assert "error: Karla answered 401" in synced.stderr and "bad creds test-shop:*** auth=Basic ***" in synced.stderr
    assert checked.returncode == 2, checked.stderr


def test_a_key_cut_by_the_message_limit_is_masked_before_the_cut(
    tmp_path: Path, echoing: Callable[[Echo], EchoServer]
) -> None:
    # Karla's message is cut at 500 characters: the key starts at 488, so 12 of its characters are left.
    server = echoing(lambda decoded, _header: "x" * 471 + f" creds {decoded} for user")
    config = write_config(tmp_path, server.url)

    checked = cli(config, "check")

    shown = checked.stdout + checked.stderr
    assert API_KEY[:12] not in shown
    assert checked.returncode == 2, checked.stderr
    assert "creds test-shop:***" in shown
