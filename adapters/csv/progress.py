"""Where the ``csv`` source is inside its files, as its stored cursor says: the resume point in one file, and
what is known of a file read to its end. Apart from ``adapters.csv.adapter`` so that it stays readable."""

from __future__ import annotations

import json
from typing import NamedTuple

from adapters.base import FileMark, Page, Rejected
from adapters.csv.files import RemoteFile

__all__ = ["Done", "Start", "file_cursor", "whole_file"]


class Done(NamedTuple):
    """A file read to its end (now or before): its dead letters (None: unknown), its hash, and whether
    the stored cursor names it (then a failed move is written into the cursor)."""

    rejected: int | None
    sha256: str
    current: bool


class Start(NamedTuple):
    """Where to resume inside a file, and how many of its rows were dead-lettered before that point."""

    bucket: int = 0
    done: int = 0
    layout: str | None = None
    rejected: int = 0


def file_cursor(name: str, sha256: str, rejected: int, bucket: int | None = None, done: int = 0, layout: str = "",
            move_failed: bool = False) -> str:
    """A resume point inside one file (``bucket`` None: the file is complete); ``layout`` says how its groups
    were ordered when it was written, ``rejected`` how many dead letters it had so far (for the error folder),
    ``move_failed`` that archiving or deleting it failed (retried by the next full sync, not the next poll)."""
    if bucket is None:
        whole = {"file": name, "sha256": sha256, "complete": True, "rejected": rejected}
        return json.dumps({**whole, "move_failed": True} if move_failed else whole)
    return json.dumps({"file": name, "sha256": sha256, "bucket": bucket, "done": done, "layout": layout, "rejected": rejected})


def whole_file(remote: RemoteFile, sha256: str, rejected: list[Rejected], closing: int | None) -> Page:
    """The one page of a file read as a whole: empty, or one letter for all of it (``closing``: see ``_pages``)."""
    marks = [] if closing is None else [FileMark(remote.name, remote.size, remote.mtime, sha256, rejected=len(rejected) + closing)]
    return Page(rejected=rejected, cursor=file_cursor(remote.name, sha256, rejected=len(rejected)), done_files=marks)
