"""Where settings come from besides the TOML file: the environment and systemd credentials.

Both read keys named like ``KARLA_CONNECTOR_KARLA__API_KEY``; a credential file's name is the variable's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic_settings import EnvSettingsSource

from connector.errors import ConfigError

__all__ = ["ENV_PREFIX", "CredentialsSource", "EnvSource", "reason"]

ENV_PREFIX = "KARLA_CONNECTOR_"


class EnvSource(EnvSettingsSource):
    """Environment variables, with a source table's values kept as the text they were given.

    Keys below ``sources.NAME.TABLE`` are unknown to these settings (their adapter's ``Config`` checks
    them later), and pydantic-settings would JSON-decode such a value: an all-digit SFTP password became
    a number and was refused, ``null`` became "no password", ``"x"`` lost its quotes. Only a JSON list or
    table (``carriers = {...}`` given as one variable) is decoded; anything else stays a string, which the
    adapter's ``Config`` converts to a number or a boolean where its field wants one.
    """

    def decode_complex_value(self, field_name: str, field: Any, value: Any) -> Any:
        if field is not None:
            return super().decode_complex_value(field_name, field, value)
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, (dict, list)) else value


class CredentialsSource(EnvSource):
    """systemd ``LoadCredential=NAME:...`` files, read as if NAME were an environment variable."""

    def _load_env_vars(self) -> dict[str, str | None]:  # type: ignore[override]
        folder = os.environ.get("CREDENTIALS_DIRECTORY")
        if not folder:
            return {}
        found: dict[str, str | None] = {}
        entry = Path(folder)
        try:
            if not entry.is_dir():
                return {}
            for entry in Path(folder).iterdir():
                if entry.is_file() and entry.name.upper().startswith(ENV_PREFIX):
                    found[entry.name.lower()] = entry.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:  # say no more: the error's text would quote bytes of the secret
            raise ConfigError(f"cannot read credential {entry}: not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"cannot read credential {entry}: {reason(exc)}") from None
        return found


def reason(exc: BaseException) -> str:
    """An OSError's reason without repeating the path the message already names."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
