"""A folder on this machine as a ``FileSource``."""

from __future__ import annotations

import os
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from adapters.csv.files import RemoteFile, safe_folder, safe_name
from connector.errors import ConfigError

__all__ = ["LocalFolder"]


class LocalFolder:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _check(self) -> None:
        if not self.root.is_dir():
            relative = "" if self.root.is_absolute() else f" (a relative url is read from the current folder: {self.root.absolute()}; use an absolute path)"
            raise ConfigError(f"folder {self.root} does not exist or is not a directory{relative}")

    def list(self) -> list[RemoteFile]:
        self._check()
        found = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    found.append(RemoteFile(entry.name, st.st_size, st.st_mtime))
        return found

    def open(self, name: str) -> AbstractContextManager[BinaryIO]:
        return open(self.root / safe_name(name), "rb")  # noqa: SIM115 - returned as a context manager

    def stat(self, name: str) -> RemoteFile | None:
        try:
            st = (self.root / safe_name(name)).stat()
        except FileNotFoundError:
            return None
        return RemoteFile(name, st.st_size, st.st_mtime)

    def move(self, name: str, folder: str) -> str:
        target_dir = self.root / safe_folder(folder)
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / safe_name(name)
        if target.exists():  # never overwrite an earlier file of the same name
            target = target_dir / f"{target.stem}.{time.strftime('%Y%m%dT%H%M%S')}{target.suffix}"
        os.replace(self.root / safe_name(name), target)
        return str(target.relative_to(self.root))

    def delete(self, name: str) -> None:
        (self.root / safe_name(name)).unlink(missing_ok=True)

    def close(self) -> None:
        return None
