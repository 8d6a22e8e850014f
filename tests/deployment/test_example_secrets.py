"""config.example.toml, which the install recipes copy into place with mode 0644, holds no secret to fill in:
each is commented out, naming the environment variable it belongs in."""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from connector.logs import named_secrets
from connector.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def test_the_example_sets_no_secret_and_names_the_variable_of_each() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert named_secrets(tomllib.loads(text)) == []  # no value under a secret's name, not even replace-me
    for key, variable in [
        ("api_key", "KARLA_CONNECTOR_KARLA__API_KEY"),
        ("access_token", "KARLA_CONNECTOR_SOURCES__SHOP__ACCESS_TOKEN"),
        ("client_secret", "KARLA_CONNECTOR_SOURCES__SHOPWARE__CLIENT_SECRET"),
        ("password", "KARLA_CONNECTOR_SOURCES__WAREHOUSE__SFTP__PASSWORD"),
        ("passphrase", "KARLA_CONNECTOR_SOURCES__WAREHOUSE__SFTP__PASSPHRASE"),
    ]:
        assert re.search(rf"^(# )+{key} = .*{variable}", text, re.M), key  # "# # " in a commented-out source


def test_the_example_installed_0644_loads_with_the_key_from_the_environment_and_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("KARLA_CONNECTOR_") or n == "CREDENTIALS_DIRECTORY"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__API_KEY", "from-env-key")
    config = tmp_path / "config.toml"
    shutil.copyfile(EXAMPLE, config)
    config.chmod(0o644)  # as deploy/ installs it
    from connector.config_file import exposure_found

    settings = load_settings(config)
    assert settings.karla.api_key.get_secret_value() == "from-env-key"
    assert exposure_found() == []
