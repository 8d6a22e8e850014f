"""Where CSV files come from: a folder on this machine or on an SFTP server, behind one small protocol.

The CSV adapter only talks to ``FileSource``; ``LocalFolder`` and ``SftpFolder`` (``adapters.csv.sftp``)
implement it, and tests can supply an in-memory one.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

from connector.errors import Aborted, ConfigError
from connector.scratch import scratch

if TYPE_CHECKING:
    import threading

    from adapters.csv.config import CsvConfig

__all__ = ["Changed", "FileSource", "Hashed", "RemoteFile", "Unreadable", "is_safe", "iter_chunks", "link_note", "name_note", "name_order_warning",
           "open_source", "parsed_as_hashed", "public_url", "safe_folder", "safe_name", "settling", "skipped", "spooled",
           "unmatched_note"]


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file as listed: ``name`` is relative to the source folder (never absolute, never with ``..``)."""

    name: str
    size: int
    mtime: float


def _unwritten() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Hashed:
    """The bytes a file's SHA-256 was taken of, to parse: each ``open()`` reads them from the start and ends after
    ``size`` bytes. What an ERP appends meanwhile is the file's next version, read whole on a later poll; parsed
    now, half a row would be sent while the file is recorded as the version hashed. ``written()``: whether the
    file was written to since it was hashed or last asked (a local file; an SFTP spool is this process's own)."""

    size: int
    open: Callable[[], AbstractContextManager[BinaryIO]]
    written: Callable[[], bool] = _unwritten


class Changed(Exception):  # noqa: N818 - says what happened to the file, as FileNotFoundError does
    """A local file no longer holds the bytes hashed (rewritten in place, cut short) while it was parsed."""


class Unreadable(Exception):  # noqa: N818 - says what the file is, as FileNotFoundError does
    """One file the account cannot open or read (no read permission; on Windows a file its writer still has
    locked), on a working connection: only that file is skipped, and tried again on the next poll. The
    message names the host, folder and file. ``lasting``: False for a race with its writer (changed or swapped
    as it was opened), which the next poll's listing settles; a lasting one fails the run once the other files
    are read, or it would look healthy while its orders never go."""

    def __init__(self, message: str, *, lasting: bool = True) -> None:
        super().__init__(message)
        self.lasting = lasting


class FileSource(Protocol):
    """A folder of files. Implementations raise ``RetryableError`` for transient failures (network),
    ``ConfigError`` for wrong credentials / host keys / missing folder."""

    def list(self) -> list[RemoteFile]:
        """Regular files directly in the folder (not recursive), any name; filtering is the caller's job. A
        symbolic link (to anything but a folder) or a name no file may have is left out and said once
        (``skipped``)."""
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
    """A file name from a listing is untrusted: one path component, so no ``/``, no ``..``, no NUL. Only what
    POSIX and SFTP forbid in a name is refused: a backslash is an ordinary character there (orders_2026\\11.csv)."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"unsafe file name {name!r}")
    return name


def is_safe(name: str) -> bool:
    try:
        safe_name(name)
    except ValueError:
        return False
    return True


_SAID: set[tuple[str, str]] = set()  # (folder, name) of the entries skipped and said so, for this process


def skipped(found: dict[str, str], log: Any, where: str, name: str, why: str) -> None:
    """An entry of a listing that is not read (a symbolic link, a name no file may have), kept in ``found``
    for ``check`` and said once per name and process: a silent skip reads as "the export never arrived"."""
    found[name] = why
    if (where, name) in _SAID:
        return
    if len(_SAID) > 10_000:  # a folder churning through odd names must not grow this for ever
        _SAID.clear()
    _SAID.add((where, name))
    log.warning("%s: %s", where, why)


def link_note(name: str) -> str:
    return f"{name} is a symbolic link; links are not followed: copy or move the file itself into the folder instead"


def name_note(name: str) -> str:
    return (f"a file named {name!r} is not read: a name with '/' or NUL, or '.' or '..', is no file name; "
            "rename it")


def safe_folder(folder: str) -> str:
    """A configured sub-folder must stay inside the source folder."""
    parts = [p for p in folder.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or folder.startswith("/") or ".." in parts:
        raise ConfigError(f"folder {folder!r} must be a relative path inside the source folder (no '..', not absolute)")
    return "/".join(parts)


def settling(remote: RemoteFile, now: float, wait: float, log: Any) -> bool:
    """Whether the file changed within ``wait`` seconds (``settle_seconds``): its writer may only have paused.

    Said at info level on every poll, with the time from which it is read, so a file that "is not picked
    up" explains itself. A modification time ahead of this clock (a server's clock running fast) waits
    too: the quiet is counted from that time.
    """
    age = now - remote.mtime
    if not wait or age >= wait:
        return False
    ready = datetime.fromtimestamp(math.ceil(remote.mtime + wait), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    changed = f"changed {math.floor(age)}s ago" if age >= 0 else f"modification time is {math.ceil(-age)}s ahead of this clock"
    log.info("%s: %s; it is read once it has not changed for %.0fs (settle_seconds): by the first sync or poll "
             "from %s", remote.name, changed, wait, ready)
    return True


# A date with the year last (20.11.2026, 11-20-2026): such names do not sort by time.
_YEAR_LAST = re.compile(r"(?<!\d)\d{1,2}[._-]\d{1,2}[._-](?:19|20)\d\d(?!\d)")


def name_order_warning(names: list[str]) -> list[str]:
    """Files are read in name order, which is taken as time order: a re-read never sends a file's version
    of an order over one from a file sorting after it. Names with day-first dates break that silently."""
    odd = sorted(n for n in names if _YEAR_LAST.search(n))
    if not odd:
        return []
    more = f" and {len(odd) - 1} more" if len(odd) > 1 else ""
    return [f"warning: {odd[0]}{more}: a date with the year last does not sort by time, but files are read in name "
            "order as time order; a full sync would send older versions of the orders such files share: have the "
            "ERP write year-first dates (2026-12-05), or use after_processing = \"archive\""]


def unmatched_note(names: list[str], source: str) -> list[str]:
    """``check``'s note, when a glob matches no file, of the CSV files no glob matches (named otherwise by the ERP)."""
    other = sorted(n for n in names if n.lower().endswith(".csv") and not n.startswith("."))
    if not other:
        return []
    more = f" and {len(other) - 5} more" if len(other) > 5 else ""
    return [f"CSV files matching no glob: {', '.join(other[:5])}{more} (set orders_glob or fulfillments_glob in "
            f"[sources.{source}])"]


@contextmanager
def spooled(files: FileSource, remote: RemoteFile, log: Any, stop: threading.Event | None = None) -> Iterator[tuple[Hashed | None, str]]:
    """A complete local copy (or the local file itself, up to the bytes hashed) and its SHA-256; (None, "") when
    the file changed while it was downloaded. Nothing of a half-downloaded file is ever parsed.

    ``stop`` (the connector shutting down) ends a download between chunks with ``Aborted`` and removes the
    spool: a large file on a slow link would otherwise outlast the shutdown grace period."""
    from adapters.csv.local import LocalFolder

    digest, size = hashlib.sha256(), 0
    if isinstance(files, LocalFolder):
        with _local(files, remote.name) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
            hashed = os.fstat(f.fileno())
        with files.pinned(remote.name, hashed, size) as local:
            if local is None or (size, hashed.st_size, hashed.st_mtime) != (remote.size, remote.size, remote.mtime):
                log.info(_CHANGED, remote.name)  # not the file listed
                yield None, ""
                return
            yield local, digest.hexdigest()
        return
    with scratch(lambda: tempfile.NamedTemporaryFile(prefix="karla-spool-"), f"download {remote.name} into") as spool:
        with files.open(remote.name) as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):  # small: on a slow link a stop is seen within seconds
                if stop is not None and stop.is_set():
                    raise Aborted(f"stopped while downloading {remote.name}; it is read on a later run")
                digest.update(chunk)
                size += spool.write(chunk)
        spool.flush()
        now = files.stat(remote.name)
        if now is None or (now.size, now.mtime) != (remote.size, remote.mtime):
            log.info("%s changed while downloading; it is read on a later run", remote.name)
            yield None, ""
            return
        yield Hashed(size, lambda: open(spool.name, "rb")), digest.hexdigest()  # the spool, written once: all of it


_CHANGED = "%s changed while being read; it is read on a later run"


def parsed_as_hashed(local: Hashed, sha256: str, pages: Generator[Any, None, int], name: str, log: Any) -> Generator[Any, None, int | None]:
    """A file's ``pages``, each handed on only once the file is seen to hold the bytes hashed still (an ``fstat``
    per page). An ERP rewriting it in place (same inode) had its new bytes parsed up to the old size, a row cut
    short and sent while the file counted as the version hashed. Then the page is not handed on, the file is not
    marked read (None, not the letters' count) and is read anew on a later run; the pages handed on before held
    the bytes hashed. A write that left them in place (an append: they hash the same again) changes nothing."""
    try:
        while True:
            try:
                page = next(pages)
            except StopIteration as end:
                return end.value
            if local.written() and _digest(local) != sha256:
                raise Changed("its hashed bytes differ now")
            yield page
    except Changed:
        log.info(_CHANGED, name)
        return None
    finally:
        pages.close()


def _digest(local: Hashed) -> str:
    digest = hashlib.sha256()
    with local.open() as f:
        for chunk in iter_chunks(f, 1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _local(files: Any, name: str) -> Iterator[BinaryIO]:
    """A local file, or ``Unreadable`` when this user may not read it (its writer's mode, another owner)."""
    with ExitStack() as stack:
        try:
            f = stack.enter_context(files.open(name))
        except PermissionError:
            raise Unreadable(f"folder {files.root}: {name} is not readable by this user (check its owner and mode)") from None
        yield f


def public_url(url: str) -> str:
    parts = urlsplit(url)
    return url if not parts.password else url.replace(f":{parts.password}@", ":***@")


def open_source(config: CsvConfig, log: Any) -> FileSource:
    from adapters.csv.local import LocalFolder

    parts = urlsplit(config.url)
    if parts.scheme in ("", "file"):
        return LocalFolder(unquote(parts.path) if parts.scheme else config.url, log=log)
    if parts.scheme == "sftp":
        from adapters.csv.sftp import SftpFolder, SftpSettings

        return SftpFolder.from_url(config.url, config.sftp or SftpSettings(), log=log)
    raise ConfigError(f"url {public_url(config.url)!r}: use file:///folder or sftp://user@host/folder")
