"""The ``csv`` source: order and fulfillment exports in a folder (local or SFTP).

Each file is read once, by fingerprint (name, size, mtime, SHA-256); a changed file is a new fingerprint
and is read again. Files still being written are left alone until they settle (or until their done
marker appears). A file is first copied to a local spool while hashing — for SFTP that makes a dropped
connection harmless: nothing of a half-downloaded file is ever parsed. What is said of a file as a whole (a
missing column, a repeated header, the one letter for an unreadable file) is worded in ``adapters.csv.notices``.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple
from zoneinfo import ZoneInfo

from adapters.base import AdapterContext, FileMark, Page, Record, Rejected, StreamSpec
from adapters.csv.after import advised, after_reading, in_error_folder, stays
from adapters.csv.config import CsvConfig
from adapters.csv.files import (FileSource, RemoteFile, Unreadable, name_order_warning, open_source, public_url, settling,
                                 spooled, unmatched_note)
from adapters.csv.grouping import group, is_grouped
from adapters.csv.mapping import Fields, map_fulfillments, map_order, order_conflicts
from adapters.csv.notices import file_letter, header_problem, warn_missing, warn_repeated
from adapters.csv.reader import FileProblem, read_keys, read_rows

__all__ = ["CsvAdapter"]

_PARTIAL = (".part", ".tmp", ".filepart", ".partial", ".crdownload")


class CsvAdapter:
    type = "csv"
    Config = CsvConfig

    def __init__(self, name: str, config: CsvConfig, context: AdapterContext, *, files: FileSource | None = None) -> None:
        self.name, self.config, self.context = name, config, context
        self._files = files

    def __repr__(self) -> str:
        return f"CsvAdapter(name={self.name!r}, url={public_url(self.config.url)!r})"

    @property
    def files(self) -> FileSource:
        if self._files is None:
            self._files = open_source(self.config, self.context.log)
        return self._files

    def close(self) -> None:
        if self._files is not None:
            self._files.close()

    # -- contract ------------------------------------------------------------------------------------
    def check(self) -> list[str]:
        facts = list(getattr(self.files, "check", lambda: [])())
        listing = self.files.list()
        now, quiet = self.context.clock().timestamp(), SimpleNamespace(info=lambda *args: None)
        globs, empty = self._globs(), False
        for stream, pattern in globs.items():
            matching = [f for f in listing if self._matches(f.name, pattern)]
            empty = empty or not matching
            facts.append(f"{len(matching)} file(s) match {pattern!r} ({stream})")
            waiting = [f for f in matching if settling(f, now, self.config.settle_seconds, quiet)]
            if waiting:  # a file "not picked up" explains itself here too, not only in an INFO line
                last = max(f.mtime for f in waiting) + self.config.settle_seconds
                names = sorted(f.name for f in waiting)  # which file "was not picked up" is what the operator asks
                listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
                facts.append(f"{len(waiting)} of them changed within settle_seconds ({self.config.settle_seconds:.0f}s): "
                             f"read from {datetime.fromtimestamp(last, timezone.utc):%H:%M:%S} UTC on")
                facts.append(f"still settling: {listed}")
            facts += name_order_warning([f.name for f in matching])
        if empty:  # a glob matching nothing: name the exports it may have been meant for
            others = [f.name for f in listing if not any(self._matches(f.name, g) for g in globs.values())]
            facts += unmatched_note(others, self.name)
        return facts

    def set_aside(self, path: str) -> str | None:
        """Where a file of this name waits put aside by the source (``error_folder``), out of its reads:
        ``dlq retry`` asks before it clears a letter naming no order (``connector.dlq``)."""
        return in_error_folder(self.config, self.context.log, path)

    def streams(self) -> Sequence[StreamSpec]:
        # Parcels first: once an order's rows are queued, its parcels are too, so the engine may deliver it
        # while the rest is still being read (connector/early.py), as one item with its trackings.
        return [StreamSpec("fulfillments", description="parcels"), StreamSpec("orders", description="order line items")]

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        resume = json.loads(cursor) if cursor else {}
        for remote in self._candidates(stream):
            yield from self._read_file(stream, remote, resume)

    # -- selection -----------------------------------------------------------------------------------
    def _globs(self) -> dict[str, str]:
        return {"orders": self.config.orders_glob, "fulfillments": self.config.fulfillments_glob}

    def _matches(self, name: str, pattern: str) -> bool:
        if name.startswith(".") or name.lower().endswith(_PARTIAL):
            return False
        if self.config.done_suffix and name.endswith(self.config.done_suffix):
            return False
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())  # Windows ERPs write ORDERS_1.CSV, Orders_1.csv

    def _candidates(self, stream: str) -> list[RemoteFile]:
        listing = self.files.list()
        names = {f.name for f in listing}
        now = self.context.clock().timestamp()
        chosen = []
        for remote in sorted(listing, key=lambda f: f.name):
            if not self._matches(remote.name, self._globs()[stream]):
                continue
            if self.config.done_suffix and remote.name + self.config.done_suffix not in names:
                self.context.log.debug("%s: waiting for its done marker", remote.name)
                continue
            if settling(remote, now, self.config.settle_seconds, self.context.log):
                continue
            chosen.append(remote)
        return chosen

    # -- one file ------------------------------------------------------------------------------------
    def _read_file(self, stream: str, remote: RemoteFile, resume: dict) -> Iterator[Page]:
        if self._read_before(remote, resume):
            return
        try:
            done = yield from self._read_whole(stream, remote, resume)
        except FileNotFoundError:
            # Taken away between the listing and the download (by the ERP's own clean-up, another
            # consumer): nothing of it was used, and the other files are still read. A local file that is
            # open is never cut short, so this comes before its first page, never after.
            self.context.log.info("%s vanished before it could be read", remote.name)
            return
        except Unreadable as exc:
            # One file the account cannot open (no read right, locked by the ERP) must not hold back the
            # files after it, nor the other stream: it is skipped, not marked read, and tried on the next poll.
            self.context.log.warning("%s; the file is skipped and tried again on the next poll, the other files are read", exc)
            return
        if done is None or after_reading(self.config, self.files, self.context, remote, done.rejected) or not done.current or self.context.full_sync:
            return
        if not resume.get("move_failed") or resume.get("sha256") != done.sha256:
            # The stored cursor says the move failed: it is retried by the next full sync, not downloaded
            # again on every poll (see _read_before).
            yield Page(cursor=_cursor(remote.name, done.sha256, done.rejected or 0, move_failed=True))

    def _read_whole(self, stream: str, remote: RemoteFile, resume: dict) -> Iterator[Page]:
        """The file's pages; returns what ``_after`` needs, or None when the file is left alone for now."""
        with spooled(self.files, remote, self.context.log, self.context.stop) as (local, sha256):
            if local is None:
                return None
            mark = FileMark(remote.name, remote.size, remote.mtime, sha256)
            same = resume.get("file") == remote.name and resume.get("sha256") == sha256
            if (seen := self.context.is_seen(mark)) and not self.context.full_sync:
                # Read to its end before, and still here: a stop came between commit and move, the move
                # failed, or the same content came back with a new mtime (remembered, so it is not opened
                # again). The count stored with it says where it goes now.
                if isinstance(seen, FileMark) and (seen.size, seen.mtime) != (mark.size, mark.mtime):
                    yield Page(done_files=[replace(mark, rejected=seen.rejected)])
                return _Done(seen.rejected if isinstance(seen, FileMark) else None, sha256, current=same)
            if same and resume.get("complete") and not self.context.full_sync:
                return None
            start = _Start(resume.get("bucket", 0), resume.get("done", 0), resume.get("layout"), resume.get("rejected", 0)) \
                if same else _Start()
            rejected = yield from self._pages(stream, remote, local, sha256, start)
        return _Done(rejected, sha256, current=True)

    def _read_before(self, remote: RemoteFile, resume: dict) -> bool:
        """Read to its end before, judged by name, size and mtime alone: such a file is not opened again.

        Hashing first would download every kept file on every poll (a year of daily SFTP exports, every
        five minutes). A new version with the same size and mtime is the blind spot; a full sync
        (``full_sync_cron``, ``sync --full``) reads everything regardless. A file still to be moved is
        opened and hashed first (only a hash that matches the version read may send it to the archive):
        the stored cursor's file at once (a stop between commit and move), a file whose move failed (the
        cursor says so, or it is not the cursor's file) on the next full sync, so a move that keeps failing
        costs no download per poll.
        """
        if self.context.full_sync:
            return False
        before = self.context.was_read(remote.name, remote.size, remote.mtime)
        if not before:
            return False
        if resume.get("file") != remote.name or resume.get("move_failed"):
            return True
        return stays(self.config, self.context, before.rejected if isinstance(before, FileMark) else None)

    def _pages(self, stream: str, remote: RemoteFile, local: Path, sha256: str, start: _Start) -> Iterator[Page]:
        c = self.config
        with local.open("rb") as f:
            try:
                header, rows = read_rows(f, c.encoding, c.delimiter, lambda lines: warn_repeated(self.context.log, remote.name, lines))
            except FileProblem as exc:  # a UTF-16 file, a header not valid in the encoding: nothing of it is read
                yield _whole_file(remote, sha256, [file_letter(self.config, stream, remote.name, sha256, str(exc))])
                return 1
            fields = Fields(c.columns, header, c.decimal_comma, ZoneInfo(c.timezone))
            if not any(header) and next(rows, None) is None:
                # 0 bytes (or only blank lines): some ERPs write one on a day without orders. Nothing to
                # read is no error; the file is done and archived or deleted like any other.
                self.context.log.info("%s is empty: nothing to read", remote.name)
                yield _whole_file(remote, sha256, [])
                return 0
            if problem := header_problem(self.name, stream, fields):
                yield _whole_file(remote, sha256, [file_letter(self.config, stream, remote.name, sha256, problem)])
                return 1
            warn_missing(self.config, self.name, self.context.log, stream, remote.name, fields)
            key_index = fields.index["order_number"]
            key = lambda r: r.values[key_index] if key_index is not None and key_index < len(r.values) else ""  # noqa: E731
            with local.open("rb") as again:
                grouped = is_grouped(read_keys(again, c.encoding, c.delimiter, key_index))
            with group(rows, key, local.stat().st_size, c.bucket_bytes, grouped, remote.name) as buckets:
                layout = f"{'grouped' if grouped else 'buckets'}/{buckets.count}"
                if start.layout != layout:  # positions mean something else now (e.g. bucket_bytes changed): start over
                    start = _Start(layout=layout)
                rejected = start.rejected  # dead letters committed before a stop count towards the error folder
                page = Page()
                for index in range(start.bucket, buckets.count):
                    skip = start.done if index == start.bucket else 0
                    for done, (order_key, order_rows) in enumerate(buckets.groups(index), start=1):
                        if done <= skip:
                            continue  # committed before a crash: same file, same groups, same order
                        for result in self._map(stream, remote.name, order_key, order_rows, fields):
                            if isinstance(result, Record):
                                page.records.append(result)
                            else:
                                page.rejected.append(advised(self.config, result))
                                rejected += 1
                        if len(page.records) + len(page.rejected) >= c.page_size:
                            page.cursor = _cursor(remote.name, sha256, rejected, index, done, layout)
                            yield page
                            page = Page()
                    page.cursor = _cursor(remote.name, sha256, rejected, index + 1, 0, layout)
                page.cursor = _cursor(remote.name, sha256, rejected)
                page.done_files = [FileMark(remote.name, remote.size, remote.mtime, sha256, rejected=rejected)]
                yield page
        return rejected

    def _map(self, stream: str, file: str, key: str, rows: list, fields: Fields) -> list[Record | Rejected]:
        """An order's record or its letters; an order's parcels, each on its own (a record and letters)."""
        c = self.config
        if stream == "orders":
            result = map_order(file, key, rows, fields, c.default_currency)
            if isinstance(result, Record) and (conflict := order_conflicts(file, key, rows, fields)):
                self.context.log.warning("%s", conflict)
            return [result] if isinstance(result, Record) else list(result)
        return map_fulfillments(file, key, rows, fields, c.carriers)


class _Done(NamedTuple):
    """A file read to its end (now or before): its dead letters (None: unknown), its hash, and whether
    the stored cursor names it (then a failed move is written into the cursor)."""

    rejected: int | None
    sha256: str
    current: bool


class _Start(NamedTuple):
    """Where to resume inside a file, and how many of its rows were dead-lettered before that point."""

    bucket: int = 0
    done: int = 0
    layout: str | None = None
    rejected: int = 0


def _cursor(name: str, sha256: str, rejected: int, bucket: int | None = None, done: int = 0, layout: str = "",
            move_failed: bool = False) -> str:
    """A resume point inside one file (``bucket`` None: the file is complete); ``layout`` says how its groups
    were ordered when it was written, ``rejected`` how many dead letters it had so far (for the error folder),
    ``move_failed`` that archiving or deleting it failed (retried by the next full sync, not the next poll)."""
    if bucket is None:
        whole = {"file": name, "sha256": sha256, "complete": True, "rejected": rejected}
        return json.dumps({**whole, "move_failed": True} if move_failed else whole)
    return json.dumps({"file": name, "sha256": sha256, "bucket": bucket, "done": done, "layout": layout, "rejected": rejected})


def _whole_file(remote: RemoteFile, sha256: str, rejected: list[Rejected]) -> Page:
    """The one page of a file read as a whole: empty, or one letter for all of it."""
    mark = FileMark(remote.name, remote.size, remote.mtime, sha256, rejected=len(rejected))
    return Page(rejected=rejected, cursor=_cursor(remote.name, sha256, rejected=len(rejected)), done_files=[mark])
