"""The README's Quick start as a newcomer follows it: the copied config, a refused key in `check`, and the
sandbox's banner pasted into a config."""

from __future__ import annotations

import os
import queue
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli, write_config

QUICK_START = (ROOT / "README.md").read_text(encoding="utf-8").split("## Quick start", 1)[1].split("\n## ", 1)[0]


def test_check_reports_a_refused_key_as_a_failed_karla_line(tmp_path: Path, sandbox) -> None:
    """It printed the source lines, then only `error: …` on stderr: the report itself said nothing of Karla."""
    config = write_config(tmp_path, sandbox.url)
    result = cli(config, "check", env={"KARLA_CONNECTOR_KARLA__API_KEY": "wrong-key-123456"})
    assert result.returncode == 2, result.stdout + result.stderr
    report = result.stdout.splitlines()
    failed = report.index(f"FAILED Karla {sandbox.url}")
    assert "the API key was refused" in report[failed + 1]
    assert "wrong-key-123456" not in result.stdout + result.stderr


def test_the_quick_start_copy_of_the_example_is_not_warned_about_under_umask_0002(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ubuntu and Fedora users have umask 0002: `cp` made a group-writable file, warned about at every start."""
    line = next(line for line in QUICK_START.splitlines() if "config.example.toml karla-connector.toml" in line)
    command = line.split("#", 1)[0].strip()
    example = tmp_path / "config.example.toml"
    example.write_bytes((ROOT / "config.example.toml").read_bytes())
    example.chmod(0o664)  # as a clone made under umask 0002 holds it
    subprocess.run(["sh", "-c", f"umask 0002 && {command}"], cwd=tmp_path, check=True)
    for name in [n for n in os.environ if n.startswith("KARLA_CONNECTOR_") or n == "CREDENTIALS_DIRECTORY"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__API_KEY", "from-env-key")
    from connector.config_file import exposure_found
    from connector.settings import load_settings

    load_settings(tmp_path / "karla-connector.toml")
    assert exposure_found() == []
    assert (tmp_path / "karla-connector.toml").stat().st_mode & 0o777 == 0o600


def test_the_quick_start_says_copied_files_wait_for_settle_seconds() -> None:
    """Files copied in were not read by the next sync, with nothing said below INFO."""
    text = " ".join(QUICK_START.split())
    assert "`settle_seconds` (60 by default" in text and "`check` lists the files still waiting" in text


def test_the_sandbox_banner_pasted_as_is_passes_check(tmp_path: Path) -> None:
    """The banner gave base_url and username but not the key: the newcomer had to guess where it goes."""
    files = tmp_path / "files"
    files.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "connector", "sandbox", "--port", "0"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        banner = _banner(proc)
        export = next(line.strip() for line in banner if line.strip().startswith("export "))
        words = shlex.split(export, comments=True)
        assert words[0] == "export" and words[1].startswith("KARLA_CONNECTOR_KARLA__API_KEY="), export
        variable, key = words[1].split("=", 1)
        karla = "\n".join(line.strip() for line in banner[1:] if not line.strip().startswith("export "))
        assert "api_key" not in karla  # the key goes to the environment, not into the file
        config = tmp_path / "karla-connector.toml"
        config.write_text(f'{karla}\nshop_slug = "my-shop"\n[sources.warehouse]\ntype = "csv"\nurl = "file://{files}"\n')
        config.chmod(0o600)
        result = cli(config, "check", env={variable: key})
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^ok Karla http://127\.0\.0\.1:\d+$", result.stdout, re.M), result.stdout


def _banner(proc: subprocess.Popen[str]) -> list[str]:
    """The sandbox's stderr up to its export line, read on a thread (which drains the request log after it)
    so a silent sandbox fails the test instead of hanging it."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    stream = proc.stderr
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    banner: list[str] = []
    while not banner or "export " not in banner[-1]:
        try:
            banner.append(lines.get(timeout=60).rstrip("\n"))
        except queue.Empty:
            pytest.fail(f"no export line in the sandbox's banner: {banner}")
    return banner
