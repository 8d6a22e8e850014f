"""Temporary files, and what to say when there is no writable temporary folder (a read-only root file system,
a full /tmp). ``tempfile`` then raises ``FileNotFoundError`` ("No usable temporary directory found"), which a
caller takes for a missing file (the CSV source called its file "vanished", exit 0) or which ends as an
"internal error" (`sync --dry-run`, exit 4): every user of a temporary file says the same line naming TMPDIR."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from connector.errors import RetryableError

__all__ = ["no_temp_folder", "scratch"]

_T = TypeVar("_T")


def no_temp_folder(purpose: str, exc: OSError) -> str:
    """The line for ``tempfile``'s ``FileNotFoundError`` while trying to ``purpose`` (e.g. "download x into")."""
    return (f"no writable temporary folder to {purpose} ({exc}): set the TMPDIR environment variable to a writable "
            "folder (a read-only root file system needs one mounted, e.g. a tmpfs or emptyDir at /tmp)")


def scratch(make: Callable[[], _T], purpose: str) -> _T:
    """A temporary file made by ``make`` (``tempfile``) for reading a source's file. With no writable temporary
    folder it is a ``RetryableError`` naming TMPDIR (the run does not finish, exit 3; the daemon tries again
    and is not ready once it lasts), never a ``FileNotFoundError`` that reads as the source file gone."""
    try:
        return make()
    except FileNotFoundError as exc:
        raise RetryableError(f"{no_temp_folder(purpose, exc)}; the file is read on the next run") from None
