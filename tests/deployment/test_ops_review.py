"""Deployment details from the operations review."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docker_run_example_waits_out_the_shutdown_grace() -> None:
    """Docker's default stop timeout (10 s) would SIGKILL the daemon within its 30 s grace period."""
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    run = next(line for line in text.splitlines() if "docker run" in line)
    assert "--stop-timeout 45" in run, run
    assert "stop_grace_period: 45s" in (ROOT / "deploy" / "compose.yaml").read_text()
