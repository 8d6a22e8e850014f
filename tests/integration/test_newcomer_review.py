"""What a newcomer following the README meets: `sandbox` on a port in use, and a disabled source in `status`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import cli, write_config


def test_sandbox_on_a_port_in_use_is_a_usage_error_naming_the_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "connector", "sandbox", "--port", str(port)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"port {port} is in use: pass --port 0 (any free port) or another port" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_status_marks_a_disabled_source(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source={"enabled": False})
    assert cli(config, "sync").returncode == 0  # creates the state file; the disabled source is not read
    human = cli(config, "status", env={"COLUMNS": "200"})
    assert human.returncode == 0, human.stderr
    row = next(line for line in human.stdout.splitlines() if "warehouse" in line)
    assert "warehouse (disabled)" in row and "never" in row
    assert json.loads(cli(config, "status", "--json").stdout)["sources"]["warehouse"]["enabled"] is False


def test_status_does_not_mark_an_enabled_source(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    assert cli(config, "sync").returncode == 0
    human = cli(config, "status", env={"COLUMNS": "200"})
    assert human.returncode == 0, human.stderr
    assert "warehouse" in human.stdout and "(disabled)" not in human.stdout
