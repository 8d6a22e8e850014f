"""What happens to a CSV export once it has been read: kept, archived, deleted or moved to the error folder.

Only once the file's last page is committed (the engine does that before asking for the next page), and
only while the file is still the version that was read. A file with dead letters stays where the source
reads it unless an ``error_folder`` takes it: a letter holds only its bad row, and the order's other rows,
and ``dlq retry`` after a fixed setting, need the file.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from adapters.base import AdapterContext, Rejected
from adapters.csv.config import CsvConfig
from adapters.csv.files import FileSource, RemoteFile, open_source, safe_folder

__all__ = ["advised", "after_reading", "in_error_folder", "stays"]


def advised(config: CsvConfig, letter: Rejected) -> Rejected:
    """A letter that advises ``dlq retry`` (a setting to fix, reader.py) also says where its file goes
    when ``error_folder`` takes it: the retry reads the file where the source reads it."""
    folder = config.error_folder
    if not folder or "dlq retry" not in letter.reason:
        return letter
    return replace(letter, reason=f"{letter.reason}; its file is moved to the error folder {folder!r}: move it back "
                                  "into the source folder before dlq retry")


def stays(config: CsvConfig, context: AdapterContext, rejected: int | None) -> bool:
    """Whether a file read to its end stays where it is: in a dry run, with ``keep``, and any file with dead
    letters unless an ``error_folder`` takes it."""
    if context.dry_run:
        return True
    if rejected:
        return not config.error_folder
    return config.after_processing == "keep"


def after_reading(config: CsvConfig, files: FileSource, context: AdapterContext, remote: RemoteFile,
                  rejected: int | None) -> bool:
    """Archive, delete or move to the error folder; False when that failed (a warning: the data is safe,
    the next full sync tries again).

    ``rejected`` None means unknown (a file read on an earlier run): it is left in place, as moving it
    could put a file with dead letters into the archive. A file that changed since it was listed is
    left too: what was read is not what would be moved, and the new version is read on a later run.
    """
    c, name, log = config, remote.name, context.log
    if stays(config, context, rejected):
        if rejected and c.after_processing != "keep":
            log.info("%s: %d dead letter(s); left in place for dlq retry (set error_folder to move such files "
                     "aside)", name, rejected)
        return True
    if rejected is None:  # (with "keep" the file stays anyway, so only archive/delete get here)
        log.info("%s: read on an earlier run, left in place (whether it had dead letters is not known here)", name)
        return True
    try:
        return _move(c, files, context, remote, rejected)
    except Exception as exc:  # noqa: BLE001 - the data is safe; the move is retried by the next full sync
        log.warning("%s: read, but could not be moved/deleted (%s); tried again by the next full sync", name, exc)
        return False


def _move(c: CsvConfig, files: FileSource, context: AdapterContext, remote: RemoteFile, rejected: int) -> bool:
    name, log = remote.name, context.log
    now = files.stat(name)
    if now is None:
        return True
    if (now.size, now.mtime) != (remote.size, remote.mtime):
        log.info("%s: changed while being read, left in place; it is read again as a new version", name)
        return True
    if rejected and c.error_folder:
        moved = files.move(name, c.error_folder)
        log.info("%s: %d dead letter(s); moved to %s. To read it again, fix it (or the setting its letters "
                 "name), move it back into the source folder, then run dlq retry", name, rejected, moved)
    elif c.after_processing == "archive":
        files.move(name, c.archive_folder)
    elif c.after_processing == "delete":
        files.delete(name)
    else:
        return True
    if c.done_suffix:
        files.delete(name + c.done_suffix)
    return True


def in_error_folder(config: CsvConfig, log: Any, name: str) -> str | None:
    """Where a file of this name waits in ``error_folder``, if one does: a letter naming no order holds nothing to match a
    clean read, so ``dlq retry`` clears it only once its file is back; until then, what it reads under that
    name is another export (a timestamped twin, a second bad file of the name, is not looked for)."""
    if not config.error_folder:
        return None
    folder = safe_folder(config.error_folder)
    parts = urlsplit(config.url)
    url = (urlunsplit(parts._replace(path=posixpath.join(parts.path, quote(folder)))) if parts.scheme
           else os.path.join(config.url, folder))
    aside = open_source(config.model_copy(update={"url": url}), log)
    try:
        return f"{folder}/{name}" if aside.stat(name) is not None else None
    finally:
        aside.close()
