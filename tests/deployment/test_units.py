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


def test_service_does_not_restart_forever_on_a_config_error() -> None:
    text = (DEPLOY / "karla-connector.service").read_text()
    assert re.search(r"^Restart=on-failure$", text, re.M)
    assert re.search(r"^RestartPreventExitStatus=2$", text, re.M)  # exit 2 = configuration error


def test_install_recipe_makes_the_config_readable_by_the_dynamic_user() -> None:
    """DynamicUser= runs as a fresh UID: a root-only /etc/karla-connector (0750/0640) cannot be read."""
    text = (DEPLOY / "karla-connector.service").read_text()
    recipe = [line for line in text.splitlines() if line.startswith("#") and "install " in line]
    folder = [line for line in recipe if "install -d" in line and "/etc/karla-connector" in line]
    config = [line for line in recipe if "/etc/karla-connector/config.toml" in line]
    assert folder and re.search(r"install -d -m 0755 /etc/karla-connector\b", folder[0]), folder
    assert config and "install -m 0644 karla-connector.toml /etc/karla-connector/config.toml" in config[0], config
    assert not re.search(r"-m 07[0-4]0 /etc/karla-connector\b|-m 06[0-4]0 \S+ /etc/karla-connector/config.toml", text)
    # the secret stays root-only: systemd (as root) copies it into $CREDENTIALS_DIRECTORY
    assert re.search(r"install -m 0600 \S+ /etc/karla-connector/karla-api-key", text)


@pytest.mark.parametrize("unit", UNITS)
def test_archive_folder_write_access_is_documented_not_granted(unit: str) -> None:
    text = (DEPLOY / unit).read_text()
    assert re.search(r"^# ReadWritePaths=/srv/exports$", text, re.M)
    assert not re.search(r"^ReadWritePaths=", text, re.M)
    assert "after_processing" in text and "ProtectSystem=strict" in text


@pytest.mark.parametrize("unit", UNITS)
def test_exposure_stays_at_most_2_with_the_archive_folder_enabled(unit: str, tmp_path: Path) -> None:
    enabled = tmp_path / unit
    enabled.write_text(re.sub(r"^# (ReadWritePaths=)", r"\1", (DEPLOY / unit).read_text(), flags=re.M))
    result = subprocess.run([analyze(), "security", "--offline=true", str(enabled)], capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match and float(match.group(1)) <= 2.0, result.stdout[-2000:] + result.stderr


def _compose_binds(text: str) -> list[dict[str, str]]:
    """Long-syntax volume entries of deploy/compose.yaml (no YAML library needed for this small file)."""
    binds, current = [], None
    for line in text.splitlines():
        item = re.match(r"\s*- type: (\w+)", line)
        if item:
            current = {"type": item.group(1)}
            binds.append(current)
            continue
        field = re.match(r"\s+(source|target|read_only|create_host_path): (\S+)", line)
        if field and current is not None:
            current[field.group(1)] = field.group(2)
    return binds


def test_compose_mounts_the_quick_start_config_and_never_creates_it() -> None:
    """Compose resolves relative paths from deploy/; the quick start writes karla-connector.toml in the
    repository root. Short syntax (./file:/path) would create an empty directory when the file is missing."""
    text = (DEPLOY / "compose.yaml").read_text()
    root = DEPLOY.parent
    (config,) = [b for b in _compose_binds(text) if b.get("target") == "/etc/karla-connector/config.toml"]
    assert config["type"] == "bind" and config["read_only"] == "true" and config["create_host_path"] == "false"
    assert (DEPLOY / config["source"]).resolve() == root / "karla-connector.toml"
    assert not re.search(r"^\s*- \.{1,2}/\S+:/", text, re.M), "short-syntax bind mount"
    env_file = re.search(r"env_file:\s*\n\s*- (\S+)", text)
    assert env_file and (DEPLOY / env_file.group(1)).resolve() == root / "karla-connector.env"
    build = re.search(r"context: (\S+)", text)
    assert build and (DEPLOY / build.group(1)).resolve() == root


def test_the_healthcheck_follows_the_health_port_set_in_the_environment() -> None:
    # It asked port 9308 whatever health_port was: a container with another port was marked unhealthy.
    import http.server
    import sys
    import threading

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    final = dockerfile_instructions()
    (health,) = [arg for op, arg in final if op == "HEALTHCHECK"]
    command = json.loads(health.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    server = http.server.HTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"KARLA_CONNECTOR_DAEMON__HEALTH_PORT": str(server.server_address[1])}
        assert subprocess.run([sys.executable, "-c", command[2]], env=env, timeout=30).returncode == 0
    finally:
        server.shutdown()


def _directives(unit: str) -> dict[str, list[str]]:
    """Uncommented Key=value lines of a unit file (every value of a repeated key)."""
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / unit).read_text().splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if match:
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


def test_sync_unit_tries_a_held_state_file_again_but_not_a_config_error() -> None:
    """The timer's oneshot met exit 75 (the daemon or a manual sync holds the state file) and just failed.
    A oneshot may not use RestartForceExitStatus= (systemd refuses the unit), so: Restart=on-failure with
    exit 2 excluded, spaced out and bounded by the start limit."""
    unit = _directives("karla-connector-sync.service")
    assert unit["Type"] == ["oneshot"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["2"]  # a configuration error waits for a fix
    assert "75" not in " ".join(unit.get("RestartPreventExitStatus", []) + unit.get("SuccessExitStatus", []))
    assert unit["SuccessExitStatus"] == ["1"]  # dead letters are no failure of the unit
    assert "RestartForceExitStatus" not in unit
    assert unit["RestartSec"] and unit["StartLimitBurst"] and unit["StartLimitIntervalSec"]
    comments = " ".join(line for line in (DEPLOY / "karla-connector-sync.service").read_text().splitlines() if line.startswith("#"))
    assert re.search(r"\b75 the state file is in use\b", comments), "exit code 75 is documented"


def test_the_units_share_one_user_state_and_key() -> None:
    """A manual sync through the oneshot unit must leave nothing the daemon cannot open."""
    daemon, sync = _directives("karla-connector.service"), _directives("karla-connector-sync.service")
    for key in ("DynamicUser", "User", "StateDirectory", "LoadCredential"):
        assert daemon[key] == sync[key], key
    assert daemon["User"] == ["karla-connector"]
    state = [e for e in daemon["Environment"] if e.startswith("KARLA_CONNECTOR_STATE__PATH=")]
    assert state and state == [e for e in sync["Environment"] if e.startswith("KARLA_CONNECTOR_STATE__PATH=")]
    assert daemon["ExecStart"][0].rsplit(" ", 1)[0] == sync["ExecStart"][0].rsplit(" ", 1)[0]


def test_install_recipe_installs_from_the_checkout() -> None:
    """karla-connector is not on a package index: `pip install karla-connector` fails."""
    text = (DEPLOY / "karla-connector.service").read_text()
    pip = [line for line in text.splitlines() if line.startswith("#") and "pip install" in line]
    assert pip and all(not re.search(r"pip install karla-connector\b", line) for line in pip), pip
    assert re.search(r"/opt/karla-connector/bin/pip install \.(\s|$)", pip[0]), pip


def test_readme_manual_run_matches_the_units() -> None:
    """The README's systemd-run recipe runs as the units do: same user, state, key, binary and config."""
    readme = (DEPLOY.parent / "README.md").read_text()
    (command,) = [block for block in re.findall(r"```sh\n(.*?)```", readme, re.S) if "systemd-run" in block]
    command = command.replace("\\\n", " ")
    props = dict(re.findall(r"-p (\w+)=(\S+)", command))
    env = dict(re.findall(r"-E (\w+)=(\S+)", command))
    unit = _directives("karla-connector.service")
    assert props["DynamicUser"] == "yes" and [props["User"]] == unit["User"]
    assert [props["StateDirectory"]] == unit["StateDirectory"] and [props["LoadCredential"]] == unit["LoadCredential"]
    (state,) = [e.split("=", 1)[1] for e in unit["Environment"] if e.startswith("KARLA_CONNECTOR_STATE__PATH=")]
    assert env["KARLA_CONNECTOR_STATE__PATH"] == state.replace("%S", "/var/lib")
    assert unit["ExecStart"][0].rsplit(" ", 1)[0] in command  # binary and --config
