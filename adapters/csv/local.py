"""A folder on this machine as a ``FileSource``.

The folder is written by another account (the ERP's upload user), so nothing in it is trusted to stay as
listed: a file may be swapped for a symbolic link to any file this service can read, an archive or error
folder for a link to any folder it can write. Files are opened without following links and checked to be
the regular file still named so; files are moved only into real folders inside the source folder.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from adapters.csv.files import Changed, Hashed, RemoteFile, Unreadable, link_note, safe_folder, safe_name, skipped
from connector.errors import ConfigError

__all__ = ["LocalFolder"]

# No O_NOFOLLOW or O_NONBLOCK on Windows: there the lstat/fstat comparison in ``open`` does the same.
_OPEN = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) \
    | getattr(os, "O_CLOEXEC", 0)
_LINKED = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)  # O_NOFOLLOW meeting a link: ELOOP (Linux), EMLINK (BSD)
_PREAD = hasattr(os, "pread")  # not on Windows
_DIR_FDS = hasattr(os, "O_DIRECTORY") and os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd


class LocalFolder:
    def __init__(self, root: Path | str, log: Any = None) -> None:
        self.root = Path(root)
        self.log = log or logging.getLogger(__name__)
        self.skipped: dict[str, str] = {}  # name -> why, of the last listing's entries not read (for `check`)

    def _check(self) -> None:
        if not self.root.is_dir():
            relative = "" if self.root.is_absolute() else f" (a relative url is read from the current folder: {self.root.absolute()}; use an absolute path)"
            raise ConfigError(f"folder {self.root} does not exist or is not a directory{relative}")

    def _path(self, name: str) -> Path:
        if os.altsep and os.altsep in name:  # Windows: a '/' is a separator there too
            raise ValueError(f"unsafe file name {name!r}")
        return self.root / safe_name(name)

    def list(self) -> list[RemoteFile]:
        self._check()
        found, self.skipped = [], {}
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    found.append(RemoteFile(entry.name, st.st_size, st.st_mtime))
                elif entry.is_symlink() and not entry.is_dir():  # a link to a folder is no export
                    skipped(self.skipped, self.log, f"folder {self.root}", entry.name, link_note(entry.name))
        return found

    def open(self, name: str) -> AbstractContextManager[BinaryIO]:
        """The regular file ``name`` names now, never what a link there points to (``Unreadable`` then)."""
        return os.fdopen(self._open(name), "rb")

    def _open(self, name: str) -> int:
        path = self._path(name)
        try:
            fd = os.open(path, _OPEN)
        except OSError as exc:
            if exc.errno not in _LINKED:
                raise
            raise self._replaced(name) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not os.path.samestat(st, os.stat(path, follow_symlinks=False)):
                raise self._replaced(name)
            if hasattr(os, "O_NONBLOCK"):  # opened so only that a FIFO put there cannot block the open
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _replaced(self, name: str) -> Unreadable:
        return Unreadable(f"folder {self.root}: {name} was replaced by a symbolic link (or something other than a file) "
                          "after it was listed; links are not followed, so it is not read", lasting=False)

    @contextmanager
    def pinned(self, name: str, hashed: os.stat_result, size: int) -> Iterator[Hashed | None]:
        """The first ``size`` bytes (those hashed) of the file ``hashed`` describes, whatever ``name`` is by now,
        or None when ``name`` is another file now. The file is held open meanwhile and read by position, so the
        name, a moment later a link to elsewhere, is not looked up again; without ``os.pread`` (Windows) it is
        opened by name once more for each reader, and checked to be that file. The same inode may still be
        rewritten in place: ``written`` tells (see ``_written``)."""
        fd = self._open(name)
        try:
            if not os.path.samestat(hashed, os.fstat(fd)):
                yield None
                return
            yield Hashed(size, lambda: _Upto(fd, size) if _PREAD else self._again(name, hashed, size), _written(fd, hashed))
        finally:
            os.close(fd)

    def _again(self, name: str, hashed: os.stat_result, size: int) -> _Upto:
        fd = self._open(name)
        if not os.path.samestat(hashed, os.fstat(fd)):
            os.close(fd)
            raise self._replaced(name)
        return _Upto(fd, size, own=True)

    def stat(self, name: str) -> RemoteFile | None:
        """The entry itself (a link's own size and mtime): a file swapped for a link reads as changed."""
        try:
            st = os.stat(self._path(name), follow_symlinks=False)
        except FileNotFoundError:
            return None
        return RemoteFile(name, st.st_size, st.st_mtime)

    def move(self, name: str, folder: str) -> str:
        folder, name = safe_folder(folder), self._path(name).name
        if not _DIR_FDS:
            return self._move_by_path(name, folder)
        root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            target = self._into(root, folder)
            try:
                moved = self._free(target, name)
                os.replace(name, moved, src_dir_fd=root, dst_dir_fd=target)
            finally:
                os.close(target)
        finally:
            os.close(root)
        return f"{folder}/{moved}"

    def _into(self, root: int, folder: str) -> int:
        """The folder's descriptor, made where missing, one part at a time and never through a link: an
        upload account must not turn ``archive`` into a link that has this service move files elsewhere. No
        descriptor outlives a failure (a folder it may not create, a full disk): a move that keeps failing is
        tried on every full sync, and each would keep one open until the process ran out of them."""
        fd = os.dup(root)
        try:
            for part in folder.split("/"):
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:
                    pass
                try:
                    inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in _LINKED:
                        raise
                    raise ConfigError(self.outside(folder) or f"folder {self.root}/{folder} is not a folder") from None
                fd, outer = inner, fd
                os.close(outer)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _free(target: int, name: str) -> str:
        """``name``, or a timestamped name if the target folder has one: an earlier file is never overwritten."""
        try:
            os.stat(name, dir_fd=target, follow_symlinks=False)
        except FileNotFoundError:
            return name
        stem, ext = os.path.splitext(name)
        return f"{stem}.{time.strftime('%Y%m%dT%H%M%S')}{ext}"

    def _move_by_path(self, name: str, folder: str) -> str:
        """``move`` where folders cannot be opened (Windows): the folder's real path is checked instead."""
        if problem := self.outside(folder):
            raise ConfigError(problem)
        target_dir = self.root / folder
        target_dir.mkdir(parents=True, exist_ok=True)
        if problem := self.outside(folder):
            raise ConfigError(problem)
        target = target_dir / name
        if target.exists():  # never overwrite an earlier file of the same name
            target = target_dir / f"{target.stem}.{time.strftime('%Y%m%dT%H%M%S')}{target.suffix}"
        os.replace(self.root / name, target)
        return str(target.relative_to(self.root))

    def outside(self, folder: str) -> str | None:
        """Why files cannot be moved into ``folder`` (``archive_folder``, ``error_folder``): a part of it is a
        symbolic link or no folder; None when it is a real folder inside this one, or not made yet."""
        current = self.root
        for part in safe_folder(folder).split("/"):
            current = current / part
            if current.is_symlink():
                return (f"folder {self.root}: {folder!r} is a symbolic link ({current} -> {os.readlink(current)}): files are "
                        "moved only into a real folder inside the source folder; make it a folder there (or set "
                        "archive_folder / error_folder to one)")
            if current.exists() and not current.is_dir():
                return f"folder {self.root}: {folder!r} is not a folder ({current} is a file)"
        return None

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def close(self) -> None:
        return None


def _written(fd: int, hashed: os.stat_result) -> Callable[[], bool]:
    """Whether the file was written to since it was hashed, or since this last said so: any write (an append, a
    rewrite in place: ``open(..., "wb")`` keeps the inode) moves its size, mtime or ctime. One ``fstat``, asked
    once per page, not per row."""
    seen = _stamp(hashed)

    def written() -> bool:
        nonlocal seen
        now = _stamp(os.fstat(fd))
        moved, seen = now != seen, now
        return moved

    return written


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


class _Upto(io.RawIOBase):
    """The first ``size`` bytes of the open file ``fd``, whatever is written after them meanwhile. Read by position
    (``os.pread``) where there is one: readers of one descriptor keep their own places (the adapter reads a file
    twice at once). ``own``: the descriptor is this reader's, closed with it. A file that ends before ``size`` was
    cut or rewritten since it was hashed: ``Changed``, as its last row would be cut short."""

    def __init__(self, fd: int, size: int, own: bool = False) -> None:
        super().__init__()
        self._fd, self._left, self._at, self._own = fd, size, 0, own

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        if want <= 0:
            return b""
        data = os.pread(self._fd, want, self._at) if _PREAD else os.read(self._fd, want)
        if len(data) < want:  # a regular file reads short only at its end
            raise Changed(f"it ends after {self._at + len(data)} bytes now; {self._at + self._left} were hashed")
        self._at += len(data)
        self._left -= len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._own and not self.closed:
            os.close(self._fd)
        super().close()
