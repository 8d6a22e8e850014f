"""Fixtures shared by the configuration tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No KARLA_CONNECTOR_* variable or systemd credential of the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.startswith("KARLA_CONNECTOR_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
