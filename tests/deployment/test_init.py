"""Installs without a checkout: `karla-connector init` writes the example config (from the wheel's copy), the
container reads its config path from the environment, and the systemd recipe checks the venv's interpreter."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from connector.logs import named_secrets
from tests.deployment.test_units import DEPLOY, dockerfile_instructions

ROOT = DEPLOY.parent
EXAMPLE = ROOT / "config.example.toml"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_") and k != "CREDENTIALS_DIRECTORY"}
    return {**env, **extra}


def karla(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connector", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env or _env())


def test_init_writes_the_example_0600_and_says_what_to_edit(tmp_path: Path) -> None:
    result = karla(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    written = tmp_path / "karla-connector.toml"
    assert written.read_bytes() == EXAMPLE.read_bytes()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert named_secrets(tomllib.loads(written.read_text())) == []  # it never writes a secret
    for hint in ("shop_slug", "[sources.warehouse]", "KARLA_CONNECTOR_KARLA__API_KEY", "check", "chmod 0644"):
        assert hint in result.stderr, result.stderr
    assert result.stdout == ""


def test_init_never_replaces_a_config(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text("[karla]\nshop_slug = \"mine\"\n")
    result = karla(tmp_path, "init", str(config))
    assert result.returncode == 2
    assert f"{config} exists" in result.stderr and "never replaces" in result.stderr
    assert config.read_text() == "[karla]\nshop_slug = \"mine\"\n"
    link = tmp_path / "link.toml"  # nor writes through a symlink to another file
    link.symlink_to(tmp_path / "elsewhere.toml")
    assert karla(tmp_path, "init", str(link)).returncode == 2 and not (tmp_path / "elsewhere.toml").exists()


def test_init_follows_config_and_the_environment_and_prints_with_a_dash(tmp_path: Path) -> None:
    assert karla(tmp_path, "--config", "a.toml", "init").returncode == 0 and (tmp_path / "a.toml").is_file()
    env = _env(KARLA_CONNECTOR_CONFIG=str(tmp_path / "b.toml"))
    assert karla(tmp_path, "init", env=env).returncode == 0 and (tmp_path / "b.toml").is_file()
    printed = karla(tmp_path, "init", "-")
    assert printed.returncode == 0 and printed.stdout == EXAMPLE.read_text(encoding="utf-8")
    missing = karla(tmp_path, "init", str(tmp_path / "no" / "c.toml"))
    assert missing.returncode == 2 and f"the folder {tmp_path / 'no'} does not exist" in missing.stderr


def test_init_reads_the_example_the_wheel_ships(tmp_path: Path) -> None:
    """Installed from the wheel there is no config.example.toml beside the packages: the packages laid out as
    the wheel lays them out, with pyproject's force-include, and nothing else."""
    site = tmp_path / "site"
    for package in ("connector", "adapters", "state"):
        shutil.copytree(ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    force = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    for source, target in force.items():
        shutil.copyfile(ROOT / source, site / target)
    result = karla(tmp_path, "init", "out.toml", env=_env(PYTHONPATH=str(site)))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.toml").read_bytes() == EXAMPLE.read_bytes()


def test_no_sources_names_init(tmp_path: Path) -> None:
    config = tmp_path / "karla-connector.toml"
    config.write_text("[karla]\nshop_slug = \"s\"\n[state]\npath = \"state.db\"\n")
    config.chmod(0o600)
    result = karla(tmp_path, "sync", env=_env(KARLA_CONNECTOR_KARLA__API_KEY="k"))
    assert result.returncode == 2 and "karla-connector init" in result.stderr, result.stderr


def test_the_container_names_its_config_in_the_environment() -> None:
    """`docker exec karla karla-connector status` had no --config and looked for ./karla-connector.toml."""
    final = dockerfile_instructions()
    final = final[max(i for i, (op, _) in enumerate(final) if op == "FROM"):]
    env = " ".join(arg for op, arg in final if op == "ENV")
    assert "KARLA_CONNECTOR_CONFIG=/etc/karla-connector/config.toml" in env.split()
    assert [json.loads(arg) for op, arg in final if op == "CMD"] == [["run"]]
    copied = " ".join(arg for op, arg in dockerfile_instructions() if op == "COPY").split()
    assert "LICENSE" in copied and "config.example.toml" in copied  # the wheel build needs both


def _recipe_check() -> str:
    text = (DEPLOY / "karla-connector.service").read_text()
    assert re.search(r"^#   /usr/bin/python3 -m venv /opt/karla-connector ", text, re.M)  # not pyenv's python3
    (line,) = [line for line in text.splitlines() if line.startswith("#   readlink -f /opt/karla-connector/bin/python3")]
    return line[len("#   "):]


def test_the_install_recipe_catches_a_python_under_root_or_home(tmp_path: Path) -> None:
    """A venv made with pyenv's or uv's Python links to /root or /home, which ProtectHome=yes hides: every
    start failed with status=203/EXEC, the journal naming bin/karla-connector as missing."""
    check = _recipe_check()
    # targets under the two folders the recipe names (where pyenv and uv put their Pythons), and a system binary
    for target, warned in (("/root/python3", True), ("/home/python3", True),
                           (os.path.realpath(shutil.which("sh") or "/bin/sh"), False)):
        venv = tmp_path / str(len(list(tmp_path.iterdir())))
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python3").symlink_to(target)
        result = subprocess.run(["bash", "-c", check.replace("/opt/karla-connector", str(venv))],
                                capture_output=True, text=True, timeout=30)
        assert ("/root or /home" in result.stdout) is warned, (target, result.stdout)
