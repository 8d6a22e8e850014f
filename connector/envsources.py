"""Where settings come from besides the TOML file: the environment and systemd credentials.

Both read keys named like ``KARLA_CONNECTOR_KARLA__API_KEY``; a credential file's name is the variable's.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import EnvSettingsSource

from connector.errors import ConfigError

__all__ = ["ENV_PREFIX", "SPECIAL", "CredentialsSource", "EnvSource", "check_names", "key_origin", "reason"]

ENV_PREFIX = "KARLA_CONNECTOR_"
SPECIAL = ("CONFIG",)  # KARLA_CONNECTOR_CONFIG names the config file (settings.config_path): no section


class EnvSource(EnvSettingsSource):
    """Environment variables, with a source table's values kept as the text they were given.

    Keys below ``sources.NAME.TABLE`` are unknown to these settings (their adapter's ``Config`` checks
    them later), and pydantic-settings would JSON-decode such a value: an all-digit SFTP password became
    a number and was refused, ``null`` became "no password", ``"x"`` lost its quotes. Only a JSON list or
    table (``carriers = {...}`` given as one variable) is decoded; anything else stays a string, which the
    adapter's ``Config`` converts to a number or a boolean where its field wants one.
    """

    what = "environment variable"

    def __call__(self) -> dict[str, Any]:
        """The values, once every ``KARLA_CONNECTOR_*`` name is known to set something (``check_names``)."""
        check_names(self.env_vars, self.settings_cls.model_fields, self.what)
        return super().__call__()

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

    what = "credential"

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


def check_names(env: Mapping[str, str | None], sections: Mapping[str, Any], what: str) -> None:
    """``ConfigError`` listing each ``KARLA_CONNECTOR_*`` name that sets nothing: pydantic-settings only
    looks up the sections it knows, so ``KARLA_CONNECTOR_DEAMON__TIMEZONE`` was silently ignored, and a
    section given a plain value (``KARLA_CONNECTOR_STATE=/var/lib/k.db``) was blamed on the config file."""
    problems = [p for name, value in sorted(env.items()) if (p := _name_problem(name, value, sections, what))]
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _name_problem(name: str, value: str | None, sections: Mapping[str, Any], what: str) -> str | None:
    """What is wrong with one variable's name (or its section's value), or ``None``."""
    upper = name.upper()
    if not upper.startswith(ENV_PREFIX) or upper[len(ENV_PREFIX):] in SPECIAL:
        return None
    section, nested, _ = upper[len(ENV_PREFIX):].lower().partition("__")
    if section not in sections:
        return f"{what} {upper}: unknown section {section!r}{_nearest(section, list(sections))}"
    if nested or _is_table(value):
        return None
    return f"{what} {upper} sets the whole [{section}] table, and its value is no table: {_keys_hint(section, sections[section])}"


def _nearest(section: str, known: list[str]) -> str:
    """The suggestion: a close section name, or the missing second underscore (``KARLA_CONNECTOR_KARLA_API_KEY``)."""
    glued = [k for k in known if section.startswith(k + "_")]
    if glued:
        meant = f"{ENV_PREFIX}{glued[0].upper()}__{section[len(glued[0]) + 1:].upper()}"
        return f"; did you mean {meant} (two underscores between levels)?"
    close = difflib.get_close_matches(section, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{hint} (known: {', '.join(known)}; {ENV_PREFIX}{' and '.join(SPECIAL)} names the config file)"


def _keys_hint(section: str, field: Any) -> str:
    """How to set a key of the section instead, e.g. ``KARLA_CONNECTOR_STATE__PATH``."""
    head = f"{ENV_PREFIX}{section.upper()}__"
    inner = getattr(field, "annotation", None)
    keys = list(inner.model_fields) if isinstance(inner, type) and issubclass(inner, BaseModel) else []
    if len(keys) == 1:
        return f"set {head}{keys[0].upper()}"
    if keys:
        return f"set one key per variable, {head}<KEY> (keys: {', '.join(keys)})"
    return f"set one key per variable, {head}<NAME>__<KEY>"


def _is_table(value: str | None) -> bool:
    """A JSON object (pydantic-settings accepts a whole section as one)."""
    try:
        return isinstance(json.loads(value or ""), dict)
    except ValueError:
        return False


def key_origin(path: Path | None) -> str:
    """Where a blank key came from, highest precedence first: an empty variable or a credential file holding only a
    newline was sent, and Karla's refusal read "wrong, deleted or expired" (exit 2, which systemd never restarts)."""
    name = f"{ENV_PREFIX}KARLA__API_KEY"
    if any(key.upper() == name for key in os.environ):
        return f"by the environment variable {name}"
    try:
        folder = os.environ.get("CREDENTIALS_DIRECTORY")
        found = [entry for entry in Path(folder).iterdir() if entry.name.upper() == name] if folder else []
    except OSError:
        found = []
    if found:
        return f"by the credential {found[0]}, a copy of the file its LoadCredential= line names"
    return f"in {path}" if path else "in the environment"
