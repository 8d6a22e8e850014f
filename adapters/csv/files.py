"""Where CSV files come from: a folder on this machine or on an SFTP server, behind one small protocol.

The CSV adapter only talks to ``FileSource``; ``LocalFolder`` and ``SftpFolder`` (``adapters.csv.sftp``)
implement it, and tests can supply an in-memory one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Protocol

__all__ = ["FileSource", "RemoteFile", "iter_chunks", "safe_folder", "safe_name"]


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file as listed: ``name`` is relative to the source folder (never absolute, never with ``..``)."""

    name: str
    size: int
    mtime: float


class FileSource(Protocol):
    """A folder of files. Implementations raise ``RetryableError`` for transient failures (network),
    ``ConfigError`` for wrong credentials / host keys / missing folder."""

    def list(self) -> list[RemoteFile]:
        """Regular files directly in the folder (not recursive), any name; filtering is the caller's job."""
        ...

    def open(self, name: str) -> AbstractContextManager[BinaryIO]:
        """A streaming binary reader for one file (never loads it whole)."""
        ...

    def stat(self, name: str) -> RemoteFile | None:
        """Current size and mtime of one file, or None if it no longer exists."""
        ...

    def move(self, name: str, folder: str) -> str:
        """Move a file into ``folder`` (relative to the source folder, created if missing); returns the new
        relative path. An existing file of the same name is never overwritten."""
        ...

    def delete(self, name: str) -> None: ...

    def close(self) -> None: ...


def iter_chunks(reader: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    while chunk := reader.read(size):
        yield chunk


def safe_name(name: str) -> str:
    """A file name from a listing is untrusted: no separators, no ``..``, no NUL."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(f"unsafe file name {name!r}")
    return name


def safe_folder(folder: str) -> str:
    """A configured sub-folder must stay inside the source folder."""
    parts = [p for p in folder.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or folder.startswith("/") or ".." in parts:
        from connector.errors import ConfigError

        raise ConfigError(f"folder {folder!r} must be a relative path inside the source folder (no '..', not absolute)")
    return "/".join(parts)
