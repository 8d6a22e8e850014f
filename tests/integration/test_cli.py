"""The CLI as a user runs it: real subprocesses against the sandbox on loopback."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import API_KEY, ORDER_HEADER, SLUG, cli, order_rows, write_config, write_fulfillments, write_orders


def test_sync_status_and_secret_hygiene(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [1, 2, 3])
    write_fulfillments(files, "fulfillments_001.csv", ["1,T1,DHL,,,,", "3,T3,GLS,,,,"])
    first = cli(config, "sync")
    assert first.returncode == 0, first.stderr
    assert "delivered 3 orders and 2 trackings" in first.stdout
    status = cli(config, "status", "--json")
    data = json.loads(status.stdout)
    assert data["pending"] == 0 and data["dead"] == 0
    assert data["sources"]["warehouse"]["last_run"]["status"] == "ok"
    human = cli(config, "status")
    second = cli(config, "sync")
    assert second.returncode == 0 and "in 0 Karla requests" in second.stdout
    for result in (first, status, human, second):
        assert API_KEY not in result.stdout + result.stderr
    assert API_KEY not in (tmp_path / "state.db").read_bytes().decode("latin-1")


def test_wrong_api_key_is_a_config_error_naming_the_credential(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    result = cli(config, "sync", env={"KARLA_CONNECTOR_KARLA__API_KEY": "wrong-key-123456"})
    assert result.returncode == 2
    assert "api_key" in result.stderr and "wrong-key-123456" not in result.stdout + result.stderr
    example = cli(config, "check", env={"KARLA_CONNECTOR_KARLA__API_KEY": "replace-me"})  # the example file's
    assert example.returncode == 2 and "is still the example's 'replace-me': set your key" in example.stderr


def test_bad_config_exits_2_naming_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\ntimeout_seconds = "soon"\n')
    result = cli(config, "sync")
    assert result.returncode == 2
    assert "karla.timeout_seconds" in result.stderr and "bad.toml" in result.stderr


def test_dead_letters_exit_1_list_retry_and_drop(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [1, 2])
    with (files / "orders_001.csv").open("a") as f:
        f.write("3,#3,not-a-date,x@example.com,EUR,1,1,A,B,10119,Berlin,DE,S,T,1,1\n")
    result = cli(config, "sync")
    assert result.returncode == 1, result.stdout + result.stderr
    letters = json.loads(cli(config, "dlq", "list", "--json").stdout)
    assert len(letters) == 1 and letters[0]["location"] == "orders_001.csv:6"
    assert "order_placed_at" in letters[0]["reason"] and letters[0]["order"] == "3"
    assert set(sandbox.orders(SLUG)) == {"1", "2"}
    dropped = cli(config, "dlq", "drop", str(letters[0]["id"]))
    assert dropped.returncode == 0 and json.loads(cli(config, "dlq", "list", "--json").stdout) == []
    unknown = cli(config, "dlq", "drop", "99")  # like `dlq retry 99`: a wrong id is an error, not "dropped 0"
    assert unknown.returncode == 2 and "1 of the ids named no dead letter" in unknown.stderr


def test_dry_run_prints_payloads_and_changes_nothing(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_001.csv", [9])
    result = cli(config, "sync", "--dry-run")
    assert result.returncode == 0, result.stderr
    (item,) = json.loads(result.stdout)["would_send"]
    assert item["id"] == "9" and item["order"]["order_number"] == "9"
    assert sandbox.requests == [] and not (tmp_path / "state.db").exists()  # not even a state file
    # a row that would be dead-lettered is shown, and the exit code says so, as a real sync's would
    write_orders(tmp_path / "files", "orders_002.csv", [10], zip_code="")
    bad = cli(config, "sync", "--dry-run")
    shown = json.loads(bad.stdout)
    assert bad.returncode == 1 and [i["id"] for i in shown["would_send"]] == ["9"]
    (letter,) = shown["would_dead_letter"]
    assert letter["location"].startswith("orders_002.csv:") and "zip" in letter["reason"]
    # the log says what would happen, not that letters were stored for `dlq list` (there is no state file)
    logged = [json.loads(line)["msg"] for line in bad.stderr.splitlines()]
    assert any("(dry run): 1 record(s) would be dead letters: orders_002.csv:" in m for m in logged), logged
    assert any("parts would be queued (dry run)" in m for m in logged) and not any("dlq list" in m for m in logged), logged


def test_sigkill_mid_sync_then_restart_delivers_everything(tmp_path: Path, sandbox) -> None:
    """A real process killed hard while delivering; the next run completes without losing an order."""
    config = write_config(tmp_path, sandbox.url, karla={"bulk_max_orders": 10})
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 401))
    sandbox.faults.delay = 0.05  # slow Karla down so the kill lands mid-delivery
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "connector", "--config", str(config), "sync"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    sandbox.wait_for(lambda sb: sum(r.status == 200 for r in sb.requests) >= 3, timeout=60)
    assert proc.poll() is None, "sync ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < len(sandbox.orders(SLUG)) < 400
    sandbox.faults.delay = 0.0
    again = cli(config, "sync")
    assert again.returncode == 0, again.stderr
    assert len(sandbox.orders(SLUG)) == 400


def test_status_names_an_order_waiting_after_karla_failed_on_it_alone(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, karla={"retry_attempts": 2, "bulk_max_orders": 1})
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2, 3])
    sandbox.refuse_order("2", 500, "unexpected", "An unexpected error occurred")
    assert cli(config, "sync").returncode == 3  # order 2's batch gave up: an outage, as far as one can tell
    second = cli(config, "sync")
    assert second.returncode == 3 and "1 order put off after Karla failed on it" in second.stdout  # not done yet
    human = cli(config, "status").stdout
    assert "pending orders: 1" in human and "1 of them wait after a failed delivery" in human
    assert "order 2 (" in human and "500 unexpected" in human
    assert set(sandbox.orders(SLUG)) == {"1", "3"}


def test_a_full_sync_of_files_that_repeat_orders_sends_nothing_unchanged(tmp_path: Path, sandbox) -> None:
    # Daily exports that repeat orders: a full sync reads the older file first. Its versions were queued, then
    # replaced by the newest, equal to what Karla had, and sent anyway; with delivery while reading, the
    # older versions went first: every order twice per full sync, Karla briefly holding old data.
    config = write_config(tmp_path, sandbox.url, karla={"deliver_while_reading_after": 1, "bulk_max_orders": 5})
    files = tmp_path / "files"
    old = [row for n in range(1, 41) for row in order_rows(n, name="Old Name")]
    new = [row.replace("Old Name", "New Name") for row in old]
    (files / "orders_001.csv").write_text("\n".join([ORDER_HEADER, *old]) + "\n", encoding="utf-8")
    (files / "orders_002.csv").write_text("\n".join([ORDER_HEADER, *new]) + "\n", encoding="utf-8")
    assert cli(config, "sync").returncode == 0
    assert {o["address"]["name"] for o in sandbox.orders(SLUG).values()} == {"New Name"}
    for _ in range(2):
        sandbox.reset_log()
        full = cli(config, "sync", "--full")
        assert full.returncode == 0 and "in 0 Karla requests" in full.stdout, full.stdout
        assert sandbox.requests == []
    assert {o["address"]["name"] for o in sandbox.orders(SLUG).values()} == {"New Name"}


def test_check_says_when_no_source_is_configured(tmp_path: Path, sandbox) -> None:
    config = tmp_path / "bare.toml"
    config.write_text(f'[karla]\nbase_url = "{sandbox.url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n'
                      f'[state]\npath = "{tmp_path / "state.db"}"\n')
    result = cli(config, "check")
    assert result.returncode == 2 and "no [sources.NAME] table is configured" in result.stdout


def test_ctrl_c_mid_sync_says_what_is_kept_and_the_next_run_finishes(tmp_path: Path, sandbox) -> None:
    # Ctrl-C ended the sync with exit 130 and not a word.
    config = write_config(tmp_path, sandbox.url, karla={"bulk_max_orders": 10})
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 401))
    sandbox.faults.delay = 0.05
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "connector", "--config", str(config), "sync"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    sandbox.wait_for(lambda sb: sum(r.status == 200 for r in sb.requests) >= 3, timeout=60)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted: what was read so far is queued and kept" in stderr, stderr
    sandbox.faults.delay = 0.0
    assert cli(config, "sync").returncode == 0 and len(sandbox.orders(SLUG)) == 400


def test_version_is_the_installed_package_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = subprocess.run([sys.executable, "-m", "connector", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"karla-connector {version('karla-connector')}"


class _AnswerSwallower:
    """A proxy in front of the sandbox that, while ``swallow`` is set, passes a bulk write on (Karla stores it)
    and then never answers: the request of a process about to be killed."""

    def __init__(self, upstream: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        self.swallow, self.swallowed, self.release = False, threading.Event(), threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                answer = httpx.request(self.command, upstream + self.path, content=body, headers=headers)
                if proxy.swallow and self.path.endswith("/bulk"):
                    proxy.swallowed.set()
                    proxy.release.wait(60)
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = _forward

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_change_back_after_a_process_killed_mid_request_is_sent(tmp_path: Path, sandbox) -> None:
    # Karla stored the newer version, but the process was killed before its answer: nothing recorded that the
    # request was on the wire, and the order changing back was dropped as "what Karla has".
    proxy = _AnswerSwallower(sandbox.url)
    try:
        config = write_config(tmp_path, proxy.url)
        files = tmp_path / "files"
        write_orders(files, "orders_001.csv", [7], zip_code="11111")
        assert cli(config, "sync").returncode == 0
        write_orders(files, "orders_002.csv", [7], zip_code="22222")
        proxy.swallow = True
        env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
        proc = subprocess.Popen([sys.executable, "-m", "connector", "--config", str(config), "sync"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        assert proxy.swallowed.wait(60) and proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert sandbox.orders(SLUG)["7"]["address"]["zip_code"] == "22222"  # stored; the answer never came
        proxy.swallow = False
        write_orders(files, "orders_003.csv", [7], zip_code="11111")  # ... and the order changes back
        again = cli(config, "sync")
        assert again.returncode == 0, again.stderr
        assert sandbox.orders(SLUG)["7"]["address"]["zip_code"] == "11111"
        with sqlite3.connect(tmp_path / "state.db") as db:  # answered requests leave no note behind
            assert db.execute("SELECT COUNT(*) FROM on_wire").fetchone() == (0,)
    finally:
        proxy.close()
