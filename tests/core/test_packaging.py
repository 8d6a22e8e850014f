"""The installed packages are this project's own, and their public faces are guarded."""

from __future__ import annotations

from pathlib import Path

import adapters
import connector
import state

ROOT = Path(__file__).resolve().parents[2]


def test_top_level_packages_come_from_this_project() -> None:
    # PyPI has unrelated distributions named `adapters` and `state`: make sure we import ours.
    for package in (adapters, connector, state):
        assert Path(package.__file__).resolve().parent.parent == ROOT, package.__file__


def test_public_names_exist() -> None:
    for package in (state, adapters.base, connector.karla):
        for name in package.__all__:
            assert hasattr(package, name), f"{package.__name__}.{name}"


def test_console_script_and_module_entry_agree() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "connector", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "sync" in result.stdout and "sandbox" in result.stdout
