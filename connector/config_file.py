"""Finding and opening the config file: a missing, unreadable or misplaced one is an error naming the file and
where it was looked for, never a crash (a service's working directory and user are rarely obvious)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from connector.envsources import ENV_PREFIX, reason
from connector.errors import ConfigError

__all__ = ["not_found", "readable", "shown"]


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
    must exist. Unreadable files and folders (a service user who may not enter /etc/karla-connector, a
    bind mount that left a directory in the file's place) are configuration errors, not crashes.
    """
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"config file {path} is a directory, not a TOML file"
                              " (Docker leaves an empty directory where a mounted file was missing on the host)")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"config file {path} is not a regular file")
        with path.open("rb"):
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
