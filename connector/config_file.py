"""Finding and opening the config file: a missing, unreadable or misplaced one is an error naming the file and
where it was looked for, never a crash (a service's working directory and user are rarely obvious)."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

from connector.envsources import ENV_PREFIX, reason
from connector.errors import ConfigError
from connector.logs import secret_keys, warn_once_configured

__all__ = ["exposure", "exposure_found", "not_found", "readable", "shown"]

_FOUND: list[str] = []  # what exposure() said about the file readable() last accepted, for `check`


def not_found(path: Path) -> str:
    return f"config file {shown(path)} not found: name one with --config PATH or {ENV_PREFIX}CONFIG=PATH"


def shown(path: Path) -> str:
    """A relative path with the folder it is relative to: a service's working directory is rarely obvious."""
    if path.is_absolute():
        return str(path)
    try:
        return f"{path} (in {Path.cwd()})"
    except OSError:  # the working directory was removed
        return str(path)


def readable(path: Path, named: bool) -> bool:
    """Whether ``path`` is a config file to read; ``ConfigError`` naming the file when it cannot be read.

    A missing default file is fine (every key may come from the environment); a file the user named
    must exist. A file others may read secrets from or change is warned about (``exposure``), once
    logging is set up. Unreadable files and folders (a service user who may not enter /etc/karla-connector, a
    bind mount that left a directory in the file's place) are configuration errors, not crashes.
    """
    _FOUND.clear()
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"config file {path} is a directory, not a TOML file"
                              " (Docker leaves an empty directory where a mounted file was missing on the host)")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"config file {path} is not a regular file")
        with path.open("rb") as file:
            _FOUND[:] = exposure(path, mode, file.read())
        for warning in _FOUND:
            warn_once_configured(__name__, warning)
        return True
    except FileNotFoundError:
        if named:
            raise ConfigError(f"config file {shown(path)} does not exist") from None
        return False
    except PermissionError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {reason(exc)} for user id {os.getuid()}; the file must be readable "
            "by the user the connector runs as, and its folders enterable (e.g. folder 0755, file 0644; under "
            "systemd DynamicUser= keep secrets out of it and pass them with LoadCredential=)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {reason(exc)}") from None


def exposure_found() -> list[str]:
    """The warnings ``exposure`` gave for the config file last read (none without one), for ``check``."""
    return list(_FOUND)


def exposure(path: Path, mode: int, content: bytes) -> list[str]:
    """Warnings when other users may read the file's secrets or change it.

    Owner is not judged (a container reads a host user's file); a file without secrets may be
    world-readable, as a DynamicUser= service needs it to be. Whoever may write it can point
    ``[karla].base_url`` at their own server, which then receives the API key from the environment.
    """
    warnings = []
    keys = _secrets_in(content)
    if mode & 0o044 and keys:
        names = ", ".join(f"{key} ({ENV_PREFIX}{key.replace('.', '__').upper()})" for key in keys)
        warnings.append(
            f"config file {shown(path)} is readable by {_who(mode, 0o040, 0o004)} (mode {mode & 0o7777:04o}) and "
            f"holds secrets: {names}. Remove them from the file and set the environment variables named, or "
            "systemd LoadCredential= files of those names; or chmod 0600 the file if only its owner runs the connector"
        )
    if mode & 0o022:
        warnings.append(
            f"config file {shown(path)} is writable by {_who(mode, 0o020, 0o002)} (mode {mode & 0o7777:04o}): whoever "
            f"may change it can point [karla].base_url at their own server and receive the API key; chmod go-w {path}"
        )
    return warnings


def _who(mode: int, group: int, others: int) -> str:
    return "its group and other users" if mode & group and mode & others else "its group" if mode & group else "other users"


def _secrets_in(content: bytes) -> list[str]:
    """Names of the non-empty secret-named keys in the TOML text; none when it does not parse (loading says why)."""
    try:
        return secret_keys(tomllib.loads(content.decode("utf-8")))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
