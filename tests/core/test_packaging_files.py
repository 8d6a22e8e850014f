"""What the wheel ships and declares: the license, py.typed markers, the example config `init` writes, and every
third-party package the code imports. Built with hatchling when it is importable; the pyproject keys and the
files they name are checked in any case."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGES = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
# Imported directly, but installed (and version-pinned) by a declared dependency.
THROUGH = {"sqlalchemy": "sqlmodel"}


def _requirements() -> dict[str, Requirement]:
    return {Requirement(r).name.lower(): Requirement(r) for r in PYPROJECT["project"]["dependencies"]}


def _floor(requirement: Requirement) -> Version:
    (floor,) = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    return floor


def test_the_license_is_shipped_as_declared() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    # license-files as a list is PEP 639, which hatchling reads from 1.27 (older ones want a table)
    (backend,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("hatchling")]
    assert _floor(backend) >= Version("1.27")


@pytest.mark.parametrize("package", ["connector", "adapters", "state"])
def test_each_package_is_marked_typed(package: str) -> None:
    assert package in PACKAGES
    assert (ROOT / package / "py.typed").is_file()  # PEP 561: else a plugin's type checker sees Any


def test_the_example_config_goes_into_the_package_init_reads() -> None:
    force = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force == {"config.example.toml": "connector/config.example.toml"}
    assert (ROOT / "config.example.toml").is_file()
    assert not (ROOT / "connector" / "config.example.toml").exists()  # one copy only: the one the tests check


def _third_party_imports() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for file in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}


def test_every_imported_package_is_declared() -> None:
    """cryptography was imported by the SFTP key loader but came only through paramiko."""
    declared = set(_requirements())
    providers = importlib.metadata.packages_distributions()
    missing = []
    for module in sorted(_third_party_imports()):
        for dist in providers.get(module, [module]):
            name = dist.lower().replace("_", "-")
            if name not in declared and THROUGH.get(name) not in declared:
                missing.append(f"{module} ({dist})")
    assert not missing, f"imported but not in [project].dependencies: {missing}"


def test_dependency_floors_that_work_with_todays_click() -> None:
    requirements = _requirements()
    # typer < 0.16 crashes on --help with click 8.2 (make_metavar() missing 'ctx'); 0.18 supports click 8.3
    assert _floor(requirements["typer"]) >= Version("0.18")
    # serialization.load_ssh_private_key (adapters/csv/keys.py) is in cryptography 3.0; paramiko 3.4 asks 3.3
    assert _floor(requirements["cryptography"]) >= Version("3.3")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^\| typer >=0\.18, rich \|", readme, re.M)
    assert re.search(r"^\| cryptography >=3\.3 \|", readme, re.M)


def test_runtime_messages_point_at_nothing_a_wheel_lacks() -> None:
    """A wheel or the container has neither the README nor config.example.toml beside it: a message (a string
    that is not a docstring) names `karla-connector init` or says what to do instead."""
    found = []
    for package in PACKAGES:
        for file in (ROOT / package).rglob("*.py"):
            tree = ast.parse(file.read_text(encoding="utf-8"))
            docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                          if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                          and node.body and isinstance(node.body[0], ast.Expr)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                    if re.search(r"README|see config\.example", node.value):
                        found.append(f"{file.relative_to(ROOT)}:{node.lineno}: {node.value[:80]}")
    assert not found, found


def test_the_wheel_holds_license_markers_and_example(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="hatchling is not installed here: the pyproject tests above stand in")
    from hatchling.builders.wheel import WheelBuilder

    (wheel,) = WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"])
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        example = archive.read("connector/config.example.toml")
    assert {"connector/py.typed", "adapters/py.typed", "state/py.typed", "connector/cli_init.py"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert example == (ROOT / "config.example.toml").read_bytes()
    assert "License-Expression: Apache-2.0" in metadata and "Requires-Dist: cryptography>=3.3" in metadata
