"""SFTP faults a merchant's server really shows: a file it will not open, a file rewritten during the
download, a port without an SSH server, a slow login, a shutdown mid-download, a pin of a key type the
client would not pick first; and messages that say what to do."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from adapters.base import AdapterContext
from adapters.csv import CsvAdapter, CsvConfig
from adapters.csv.files import RemoteFile, spooled
from adapters.csv.local import LocalFolder
from adapters.csv.sftp import SftpFolder, SftpSettings
from connector.errors import Aborted, ConfigError, RetryableError
from tests.conftest import SLUG, cli
from tests.sftpsource.faultserver import FaultServer
from tests.sftpsource.test_sftp import HEADER, folder, sftp_config


@pytest.fixture()
def faulty(sftp_root: Path) -> Iterator[FaultServer]:
    srv = FaultServer(sftp_root).start()
    yield srv
    srv.stop()


def _orders(path: Path, *numbers: int) -> None:
    path.write_text(HEADER + "\n" + "".join(f"{n},10119,Name {n},SKU-{n},1,9.99\n" for n in numbers))


# -- one file the account cannot open ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["deny", "fail"])
def test_a_file_the_server_refuses_is_skipped_and_the_rest_is_read(faulty: FaultServer, sftp_root: Path, tmp_path: Path,
                                                                   sandbox, kind: str) -> None:
    exports = sftp_root / "exports"
    for n in range(3):
        _orders(exports / f"orders_{n}.csv", n + 1)
    (exports / "fulfillments_1.csv").write_text("order_number,tracking_number\n1,T1\n")
    faulty.refuse = {"orders_1.csv": kind, "fulfillments_1.csv": kind}  # parcels come first: they held back all orders
    config, env = sftp_config(faulty, tmp_path, sandbox.url, after_processing="archive")
    first = cli(config, "sync", env=env)
    assert first.returncode == 3, first.stderr  # the others delivered, but the run failed: not a healthy sync
    assert sorted(sandbox.orders(SLUG)) == ["1", "3"]
    error = next(line for line in first.stderr.splitlines() if "orders_1.csv" in line and "could not finish" in line)
    assert f"127.0.0.1:{faulty.port}" in error and "/exports" in error and "fulfillments_1.csv" in error
    assert (exports / "orders_1.csv").exists()  # not archived, not marked read
    faulty.refuse = {}
    again = cli(config, "sync", env=env)
    assert again.returncode == 0, again.stderr
    assert sorted(sandbox.orders(SLUG)) == ["1", "2", "3"] and not (exports / "orders_1.csv").exists()


class _Unreadable(LocalFolder):
    """A local folder where one file lacks read permission. Tests run as root here, which reads any
    file, so the operating system's refusal is simulated; the rest is the real folder."""

    def open(self, name: str):  # type: ignore[override]
        if name == "orders_1.csv":
            raise PermissionError(errno.EACCES, "Permission denied", str(self.root / name))
        return super().open(name)


def test_an_unreadable_local_file_is_skipped(tmp_path: Path) -> None:
    for n in range(3):
        _orders(tmp_path / f"orders_{n}.csv", n + 1)
    adapter = CsvAdapter("w", CsvConfig(url=str(tmp_path), settle_seconds=0), AdapterContext(source="w"),
                         files=_Unreadable(tmp_path))
    pages: list = []
    with pytest.raises(RetryableError, match=r"orders_1\.csv is not readable by this user") as failed:
        pages.extend(adapter.read("orders", None))  # the other files' pages first, then the read fails naming it
    assert sorted(r.key for p in pages for r in p.records) == ["1", "3"]
    assert [m.path for p in pages for m in p.done_files] == ["orders_0.csv", "orders_2.csv"]
    assert str(tmp_path) in str(failed.value)


# -- a file rewritten during the download -----------------------------------------------------------------

def test_a_file_rewritten_smaller_while_downloading_is_left_for_later(faulty: FaultServer, sftp_root: Path, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    path = sftp_root / "exports" / "orders_1.csv"
    path.write_bytes(b"x" * 3_000_000)
    files = folder(faulty, tmp_path, timeout_seconds=5)
    remote = next(f for f in files.list() if f.name == "orders_1.csv")
    faulty.on_read = lambda: path.write_bytes(b"y" * 10)  # the ERP rewrites its export in place
    with caplog.at_level(logging.INFO), spooled(files, remote, logging.getLogger("t")) as (local, sha256):
        assert (local, sha256) == (None, "")  # before: "connection lost while reading" after the whole timeout
    assert any("changed while downloading" in r.getMessage() for r in caplog.records)
    assert files.list()  # the connection is still usable


# -- connecting and logging in ----------------------------------------------------------------------------

def test_a_port_without_an_ssh_server_is_a_retryable_timeout(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    (tmp_path / "known_hosts").write_text("")
    settings = SftpSettings(password="x", known_hosts=str(tmp_path / "known_hosts"), timeout_seconds=1)
    files = SftpFolder("127.0.0.1", listener.getsockname()[1], "merchant", "/exports", settings)
    try:
        with pytest.raises(RetryableError, match=r"merchant@127.0.0.1:\d+: no SSH handshake within 1s"):
            files.list()
    finally:
        listener.close()


def test_a_login_the_server_does_not_answer_in_time_is_retryable(faulty: FaultServer, tmp_path: Path) -> None:
    faulty.auth_delay = 10
    with pytest.raises(RetryableError, match=r"did not answer the login .* within 1s"):
        folder(faulty, tmp_path, timeout_seconds=1).list()


def test_a_stalled_read_says_it_timed_out(faulty: FaultServer, sftp_root: Path, tmp_path: Path) -> None:
    (sftp_root / "exports" / "orders_1.csv").write_bytes(b"x" * 100_000)
    faulty.read_delay = 10
    with pytest.raises(RetryableError, match=r"reading orders_1.csv: timed out after 1s"), \
            folder(faulty, tmp_path, timeout_seconds=1).open("orders_1.csv") as reader:
        reader.read()


def test_a_key_given_with_literal_backslash_n_loads(sftp_root: Path, tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    srv = FaultServer(sftp_root, client_keys=[key.export_public_key("openssh").decode()]).start()
    try:
        one_line = key.export_private_key("openssh").decode().strip().replace("\n", "\\n")  # as docker --env-file passes it
        assert folder(srv, tmp_path, password=None, private_key=one_line).list() == []
    finally:
        srv.stop()


# -- shutting down ----------------------------------------------------------------------------------------

def test_a_stop_ends_the_download_and_removes_the_spool(faulty: FaultServer, sftp_root: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    (sftp_root / "exports" / "orders_1.csv").write_bytes(b"x" * 5_000_000)
    stop = threading.Event()
    faulty.on_read = stop.set  # SIGTERM arrives while the file is downloaded
    faulty.read_delay = 0.2  # a slow link: 32 KB per 0.2 s
    files = folder(faulty, tmp_path)
    remote = RemoteFile("orders_1.csv", 5_000_000, 0.0)
    with pytest.raises(Aborted, match="orders_1.csv"), spooled(files, remote, logging.getLogger("t"), stop):
        pass
    # Ended after the first chunk: not after the whole file, nor after waiting for the window's 32 reads in flight.
    assert faulty.reads < 16
    assert list(spool.iterdir()) == []


# -- host keys ----------------------------------------------------------------------------------------------

def test_a_pinned_key_type_is_remembered_across_polls(sftp_root: Path, tmp_path: Path) -> None:
    srv = FaultServer(sftp_root, extra_host_keys=("ssh-rsa",)).start()
    try:
        (tmp_path / "known_hosts").write_text("")
        pin = srv.fingerprint_of(srv.extra_host_keys[0])  # RSA: not the type paramiko picks first
        folder(srv, tmp_path, host_key_fingerprint=pin).list()
        before = srv.connections
        folder(srv, tmp_path, host_key_fingerprint=pin).list()  # each poll makes a new adapter
        assert srv.connections - before == 1
    finally:
        srv.stop()


def test_host_key_messages_say_what_to_do(faulty: FaultServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("# servers\n" + faulty.known_hosts_line())
    faulty.restart_with_new_host_key()
    with pytest.raises(ConfigError) as changed:
        folder(faulty, tmp_path).list()
    assert f"{known} has" in str(changed.value) and "on line 2" in str(changed.value) and "server's admin" in str(changed.value)
    with pytest.raises(ConfigError) as pinned:
        folder(faulty, tmp_path, host_key_fingerprint="SHA256:" + "A" * 43).list()
    assert "set host_key_fingerprint to the new value" in str(pinned.value)


def test_sigterm_during_a_slow_download_stops_the_daemon_at_once(faulty: FaultServer, sftp_root: Path, tmp_path: Path, sandbox) -> None:
    (sftp_root / "exports" / "orders_1.csv").write_bytes(b"x" * 5_000_000)  # ~30 s at this pace
    config, env = sftp_config(faulty, tmp_path, sandbox.url, poll_interval=300)
    config.write_text(config.read_text().replace("[state]", "[daemon]\nhealth_port = 0\nshutdown_grace_seconds = 20\n[state]"))
    spool = tmp_path / "spool"
    spool.mkdir()
    started = threading.Event()
    faulty.read_delay, faulty.on_read = 0.2, started.set
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")} | env | {"TMPDIR": str(spool)}
    daemon = subprocess.Popen([sys.executable, "-m", "connector", "--config", str(config), "run"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=full_env, cwd=tmp_path)
    try:
        assert started.wait(30)
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert "daemon stopped" in out and "still in flight" not in out  # before: the grace period, then os._exit
    assert list(spool.iterdir()) == []
