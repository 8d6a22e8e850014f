"""A config file other users may read while it holds a secret, or may change, is warned about at start (in the
configured log format) and by `check`; never its secrets' values, never a file without secrets or kept 0600."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import API_KEY, cli, write_config

SHOP_TOKEN = "shpat_secret_31337"
SHOP = f'[sources.shop]\ntype = "shopify"\nenabled = false\nshop_domain = "x.myshopify.com"\naccess_token = "{SHOP_TOKEN}"\n'


def _warnings(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The log's warnings about the config file; every stderr line must be JSON, as configured."""
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    return [line["msg"] for line in lines if line["level"] == "warning" and line["msg"].startswith("config file")]


def test_a_config_with_secrets_others_may_read_is_warned_about_at_start_and_in_check(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, extra=SHOP)
    config.chmod(0o644)
    check = cli(config, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    [warning] = _warnings(check)
    assert str(config) in warning and "readable by its group and other users (mode 0644)" in warning
    assert "karla.api_key (KARLA_CONNECTOR_KARLA__API_KEY)" in warning
    assert "sources.shop.access_token (KARLA_CONNECTOR_SOURCES__SHOP__ACCESS_TOKEN)" in warning
    assert "LoadCredential=" in warning and "chmod 0600" in warning
    assert "warning config file" in check.stdout and "sources.shop.access_token" in check.stdout
    for secret in (API_KEY, SHOP_TOKEN):
        assert secret not in check.stdout + check.stderr

    config.chmod(0o640)  # the group may still read it
    assert "readable by its group (mode 0640)" in _warnings(cli(config, "check"))[0]
    config.chmod(0o600)
    quiet = cli(config, "check")
    assert quiet.returncode == 0 and not _warnings(quiet) and "warning" not in quiet.stdout, quiet.stdout + quiet.stderr


def test_a_file_without_secrets_may_be_world_readable_but_not_writable(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    config.write_text(config.read_text().replace(f'api_key = "{API_KEY}"\n', ""), encoding="utf-8")
    env = {"KARLA_CONNECTOR_KARLA__API_KEY": API_KEY}  # where the secret belongs
    config.chmod(0o644)
    plain = cli(config, "check", env=env)
    assert plain.returncode == 0 and not _warnings(plain) and "warning" not in plain.stdout, plain.stdout + plain.stderr

    config.chmod(0o664)
    [warning] = _warnings(cli(config, "check", env=env))
    assert f"config file {config} is writable by its group (mode 0664)" in warning and "[karla].base_url" in warning

    # the implicit ./karla-connector.toml of the current folder is judged as well
    config.chmod(0o646)
    implicit = subprocess.run(
        [sys.executable, "-m", "connector", "check"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}, **env},
    )
    assert implicit.returncode == 0, implicit.stdout + implicit.stderr
    [warning] = _warnings(implicit)
    assert "config file karla-connector.toml (in " in warning and "writable by other users (mode 0646)" in warning
