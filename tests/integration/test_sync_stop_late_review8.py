"""A SIGTERM in a `sync`'s last moments (found by the crash8 review): the handler was put back to the default
before the report was printed, so a signal then killed the process (exit -15, no report, no "interrupted" line).
It is now kept until the exit code is known.

To hit that moment every time, without a hook in the code: the sync's stdout is a pipe the test has filled, so
the report's first write blocks (nothing else goes to stdout); the signal comes while it waits there, after
Karla has every order, and then the test reads the pipe. A real `sync` process against the sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SLUG, write_config, write_orders

pytestmark = pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux /proc/<pid>/wchan")


def _full_pipe() -> tuple[int, int, int]:
    """A pipe whose buffer the test has filled: (read end, write end, bytes of filler)."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    filler = 0
    try:
        while True:
            filler += os.write(write_end, b"#" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    return read_end, write_end, filler


def _blocked_writing(pid: int) -> bool:
    try:
        return "pipe_write" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def test_a_sigterm_while_the_report_is_written_still_ends_as_a_stop(tmp_path: Path, sandbox: Any) -> None:
    config = write_config(tmp_path, sandbox.url, karla={"deliver_while_reading_after": 0})
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 6))
    read_end, write_end, filler = _full_pipe()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
    with (tmp_path / "stderr.log").open("w") as stderr_file:  # a file never blocks: only stdout can
        proc = subprocess.Popen([sys.executable, "-m", "connector", "--config", str(config), "sync"], cwd=tmp_path,
                                stdout=write_end, stderr=stderr_file, env=env)
    os.close(write_end)
    try:
        deadline = time.monotonic() + 60
        while not (len(sandbox.orders(SLUG)) == 5 and _blocked_writing(proc.pid)):
            assert proc.poll() is None, f"sync ended before writing its report: {proc.returncode}"
            assert time.monotonic() < deadline, "the sync never blocked writing its report after delivering"
            time.sleep(0.02)  # polling an observable state (Karla's orders, the process's wait), not a guess
        proc.send_signal(signal.SIGTERM)
        chunks = []
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
        proc.wait(timeout=60)
    finally:
        os.close(read_end)
        if proc.poll() is None:
            proc.kill()
    stdout = b"".join(chunks)[filler:].decode()
    stderr = (tmp_path / "stderr.log").read_text()
    assert proc.returncode == 143, (proc.returncode, stdout, stderr[-2000:])  # it was -15: killed by the signal
    assert "delivered 5 orders" in stdout, stdout
    assert "interrupted (SIGTERM): what was read so far is queued and kept" in stderr, stderr[-2000:]
