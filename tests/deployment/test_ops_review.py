"""Deployment details from the operations review."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docker_run_example_waits_out_the_shutdown_grace() -> None:
    """Docker's default stop timeout (10 s) would SIGKILL the daemon within its 40 s grace period."""
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    run = next(line for line in text.splitlines() if "docker run" in line)
    assert "--stop-timeout 45" in run, run
    assert "stop_grace_period: 45s" in (ROOT / "deploy" / "compose.yaml").read_text()


def test_stop_timeouts_outlast_the_default_shutdown_grace() -> None:
    """The grace period waits out a Karla request on the wire; the units and compose wait out the grace period."""
    import re

    from connector.settings import DaemonSettings, KarlaSettings

    grace = DaemonSettings.model_fields["shutdown_grace_seconds"].default
    assert KarlaSettings.model_fields["timeout_seconds"].default < grace
    stop = re.search(r"^TimeoutStopSec=(\d+)s$", (ROOT / "deploy" / "karla-connector.service").read_text(), re.M)
    assert stop and grace < int(stop.group(1))
    assert grace < 45  # --stop-timeout 45 and stop_grace_period: 45s, checked above
    example = re.search(r"^shutdown_grace_seconds = (\d+)", (ROOT / "config.example.toml").read_text(), re.M)
    assert example and float(example.group(1)) == grace
