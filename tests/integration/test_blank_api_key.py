"""A blank Karla API key (an empty variable, a credential file holding only a newline, ``api_key = ""``) is a
configuration error naming where it came from: it was sent, and Karla's refusal read "wrong, deleted or expired"
(exit 2, which systemd never restarts) though no key had been given at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.settings import load_settings
from tests.conftest import API_KEY, cli, write_config, write_orders

VARIABLE = "KARLA_CONNECTOR_KARLA__API_KEY"


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KARLA_CONNECTOR_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def _without_key(tmp_path: Path, url: str = "http://127.0.0.1:9", key: str | None = None) -> Path:
    """The test config with its api_key line removed, or set to ``key``."""
    config = write_config(tmp_path, url)
    line = f'api_key = "{API_KEY}"\n'
    config.write_text(config.read_text().replace(line, "" if key is None else f'api_key = "{key}"\n'))
    return config


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("blank", ["", "  ", "\t"])
def test_a_blank_key_in_the_config_file_names_the_file(tmp_path: Path, blank: str) -> None:
    config = _without_key(tmp_path, key=blank)
    with pytest.raises(ConfigError, match=rf"config key karla\.api_key: is empty \(set in {config}\)"):
        load_settings(config)


@pytest.mark.usefixtures("clean_env")
def test_an_empty_variable_is_named_and_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")  # a key in the file: the empty variable wins over it
    monkeypatch.setenv(VARIABLE, "")
    with pytest.raises(ConfigError, match=rf"is empty \(set by the environment variable {VARIABLE}\)"):
        load_settings(config)


@pytest.mark.usefixtures("clean_env")
def test_a_credential_file_holding_a_newline_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`install -m 0600 /dev/stdin …/karla-api-key <<< "$KARLA_API_KEY"` with the variable unset writes "\\n"."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / VARIABLE).write_text("\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    with pytest.raises(ConfigError, match=rf"set by the credential {creds / VARIABLE}, a copy of the file its LoadCredential="):
        load_settings(_without_key(tmp_path))


@pytest.mark.usefixtures("clean_env")
def test_commands_that_never_call_karla_still_load_without_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`status` and `dlq list` beside a systemd service run in a shell without the key (or with an empty one)."""
    monkeypatch.setenv(VARIABLE, "")
    assert load_settings(_without_key(tmp_path), need_api_key=False).karla.api_key.get_secret_value() == ""


def test_sync_with_an_empty_variable_sends_nothing_and_exits_2(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    config = _without_key(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_001.csv", [1001])
    result = cli(config, "sync", env={VARIABLE: ""})
    assert result.returncode == 2, result.stderr
    assert f"config key karla.api_key: is empty (set by the environment variable {VARIABLE})" in result.stderr
    assert "wrong, deleted or expired" not in result.stderr
    assert sandbox.requests == []
    status = cli(config, "status", env={VARIABLE: ""})  # needs no key, as before (here: no state file yet)
    assert "state file" in status.stderr and "api_key" not in status.stderr, status.stderr
