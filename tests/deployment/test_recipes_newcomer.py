"""The install recipes as a new merchant runs them: an unset KARLA_API_KEY stops the recipe (it wrote a key file
holding only a newline, sent as an empty key and refused as "wrong, deleted or expired"), the unit is started on
the config the merchant edited (not the example), and the README's carry-over of a manual run's state file copies
it where the units and the image look for it (their KARLA_CONNECTOR_STATE__PATH overrides [state].path)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _recipe(name: str, marker: str) -> str:
    """The recipe line of ``deploy/NAME`` holding ``marker``, without its comment sign."""
    (line,) = [line for line in (DEPLOY / name).read_text().splitlines() if line.startswith("#") and marker in line]
    return line.lstrip("#").strip()


KEY_LINES = [
    ("karla-connector.service", "/etc/karla-connector/karla-api-key <<<", "/etc/karla-connector/karla-api-key", "key"),
    ("compose.yaml", "karla-connector.env &&", "karla-connector.env", "key.env"),
]


@pytest.mark.parametrize(("unit", "marker", "target", "local"), KEY_LINES)
def test_an_unset_key_variable_stops_the_recipe(tmp_path: Path, unit: str, marker: str, target: str, local: str) -> None:
    command = _recipe(unit, marker).replace(target, str(tmp_path / local))
    env = {k: v for k, v in os.environ.items() if k != "KARLA_API_KEY"}
    unset = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30)
    assert unset.returncode != 0 and "KARLA_API_KEY" in unset.stderr, unset
    assert not (tmp_path / local).exists()  # no key file holding only "\n"
    given = subprocess.run(["bash", "-c", command], env={**env, "KARLA_API_KEY": "k-123"}, cwd=tmp_path, timeout=30)
    assert given.returncode == 0 and "k-123" in (tmp_path / local).read_text()


def test_the_service_starts_on_the_merchants_config_not_the_example() -> None:
    """`enable --now` right after installing config.example.toml started the daemon on the example's sources."""
    text = (DEPLOY / "karla-connector.service").read_text()
    recipe = [line for line in text.splitlines() if line.startswith("#   ")]
    install = [line for line in recipe if "/etc/karla-connector/config.toml" in line]
    assert install and all("config.example.toml" not in line for line in install), install
    assert re.search(r"install -m 0644 karla-connector\.toml /etc/karla-connector/config\.toml", install[0])
    assert recipe.index(install[0]) < [i for i, line in enumerate(recipe) if "enable --now" in line][0]


def test_the_readme_carries_a_manual_state_over_to_where_the_service_reads_it() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Running as a service"):readme.index("## Upgrading")]
    assert "overrides `[state].path`" in section
    unit = (DEPLOY / "karla-connector.service").read_text()
    (state,) = re.findall(r"^Environment=KARLA_CONNECTOR_STATE__PATH=%S/(\S+)/(\S+)$", unit, re.M)
    (image,) = re.findall(r"KARLA_CONNECTOR_STATE__PATH=(\S+)", (DEPLOY / "Dockerfile").read_text())
    assert re.search(r"StateDirectory=" + re.escape(state[0]) + "$", unit, re.M) and "DynamicUser=yes" in unit
    # DynamicUser= keeps StateDirectory= under /var/lib/private; the image's volume is the state path's folder
    assert f"cp {state[1]}* /var/lib/private/{state[0]}/" in section
    assert f"chown -R --reference=/var/lib/private/{state[0]} /var/lib/private/{state[0]}" in section
    assert f"cp /from/{state[1]}* {image.rsplit('/', 1)[0]}/" in section and "chown 10001:10001" in section
