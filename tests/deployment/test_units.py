"""The systemd units verify and stay hardened (exposure ≤ 2.0); the Dockerfile runs as non-root with a
state volume and a health check. systemd-analyze needs no running systemd (Debian's systemd package)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ["karla-connector.service", "karla-connector-sync.service"]


def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("KARLA_SKIP_SYSTEMD_TESTS") == "1":
            pytest.skip("systemd-analyze missing and KARLA_SKIP_SYSTEMD_TESTS=1")
        pytest.fail("systemd-analyze is missing: `make test` installs Debian's systemd package (or set KARLA_SKIP_SYSTEMD_TESTS=1)")
    return tool


def test_units_verify(tmp_path: Path) -> None:
    tool = analyze()
    # verify checks that ExecStart exists: point it at a binary this machine has, nothing else changes
    for name in [*UNITS, "karla-connector-sync.timer"]:
        text = (DEPLOY / name).read_text().replace("/opt/karla-connector/bin/karla-connector", "/bin/true")
        (tmp_path / name).write_text(text)
    result = subprocess.run([tool, "verify", "--man=no", *(str(tmp_path / n) for n in [*UNITS, "karla-connector-sync.timer"])],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "karla-connector" not in result.stderr, result.stderr  # no warnings about our units


@pytest.mark.parametrize("unit", UNITS)
def test_exposure_is_at_most_2(unit: str) -> None:
    result = subprocess.run([analyze(), "security", "--offline=true", str(DEPLOY / unit)], capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout[-2000:]


def test_service_is_notify_with_watchdog_state_dir_and_credentials() -> None:
    text = (DEPLOY / "karla-connector.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "DynamicUser=yes", "StateDirectory=karla-connector", "LoadCredential=KARLA_CONNECTOR_KARLA__API_KEY:"):
        assert line in text
    assert not re.search(r"(API_KEY|PASSWORD|TOKEN)=\S", text)  # no secret values inline


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined, current = [], ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        current += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in joined]


def test_dockerfile_runs_as_non_root_with_volume_and_healthcheck() -> None:
    instructions = dockerfile_instructions()
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    users = [arg for op, arg in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    volumes = [arg for op, arg in final if op == "VOLUME"]
    assert any("/var/lib/karla-connector" in v for v in volumes)
    health = [arg for op, arg in final if op == "HEALTHCHECK"]
    assert health and "/healthz" in health[0]
    entry = [json.loads(arg) for op, arg in final if op == "ENTRYPOINT"]
    assert entry == [["karla-connector"]]
    env = " ".join(arg for op, arg in final if op == "ENV")
    assert not re.search(r"(API_KEY|TOKEN|PASSWORD|SECRET)\w*=", env), env
    state_env = re.search(r"KARLA_CONNECTOR_STATE__PATH=(\S+)", env)
    assert state_env and state_env.group(1).startswith("/var/lib/karla-connector/")
