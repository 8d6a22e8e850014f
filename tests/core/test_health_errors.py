"""What the health server says when answering a connection fails: a prober that gave up is no news (no raw
socketserver traceback on stderr, outside the JSON log); any other failure is a WARNING in the log."""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Callable

import pytest

from connector.health import HealthServer

_RAW = "Exception occurred during processing of request"  # how socketserver's handle_error starts


class _Answering:
    """A callback the handler thread calls: it records that thread and holds it until ``go``."""

    def __init__(self, then: Callable[[], object]) -> None:
        self.then, self.thread = then, None
        self.called, self.go = threading.Event(), threading.Event()

    def __call__(self) -> object:
        self.thread = threading.current_thread()
        self.called.set()
        assert self.go.wait(10)
        return self.then()


def _ask(port: int, path: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def _finished(callback: _Answering) -> None:
    assert callback.thread is not None
    callback.thread.join(10)  # the handler thread, done with its error handling
    assert not callback.thread.is_alive()


def test_a_probe_that_gives_up_leaves_no_traceback(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    ready = _Answering(lambda: (True, {"sources": "x" * 200_000}))  # more than the socket buffers take
    server = HealthServer("127.0.0.1", 0, ready, lambda: b"").start()
    try:
        s = _ask(server.port, "/readyz")
        assert ready.called.wait(10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # the prober's timeout: a reset before the answer
        ready.go.set()
        _finished(ready)
    finally:
        server.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err and _RAW not in err
    assert not [r for r in caplog.records if r.name == "connector.health"]


def test_any_other_failure_is_a_warning_in_the_log(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    metrics = _Answering(lambda: 1 / 0)
    server = HealthServer("127.0.0.1", 0, lambda: (True, {}), metrics).start()
    try:
        with _ask(server.port, "/metrics"):
            assert metrics.called.wait(10)
            with caplog.at_level(logging.WARNING, logger="connector.health"):
                metrics.go.set()
                _finished(metrics)
    finally:
        server.stop()
    [record] = [r for r in caplog.records if r.name == "connector.health"]
    assert record.levelno == logging.WARNING and "127.0.0.1" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert _RAW not in capfd.readouterr().err  # socketserver's own print, outside the log
