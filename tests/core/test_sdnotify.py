"""sd_notify over a real datagram socket, filesystem and abstract; a no-op outside systemd."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from connector.sdnotify import Notifier, watchdog_interval


@pytest.mark.parametrize("abstract", [False, True])
def test_messages_arrive_in_order(tmp_path: Path, abstract: bool) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        name = f"@karla-test-{os.getpid()}-{abstract}" if abstract else str(tmp_path / "n.sock")
        sock.bind(b"\0" + name[1:].encode() if abstract else name)
        sock.settimeout(5)
        notifier = Notifier(name)
        assert notifier.ready() and notifier.watchdog() and notifier.status("syncing warehouse") and notifier.stopping()
        assert [sock.recv(1024).decode() for _ in range(4)] == ["READY=1", "WATCHDOG=1", "STATUS=syncing warehouse", "STOPPING=1"]


def test_without_socket_nothing_happens(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert Notifier().ready() is False
    assert Notifier(str(tmp_path / "nobody-listens")).ready() is False  # a failed send is not an error


def test_watchdog_interval_is_half_and_only_for_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 30.0
