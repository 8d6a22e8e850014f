"""The ``csv`` source: order and fulfillment exports in a folder (local or SFTP).

Each file is read once, by fingerprint (name, size, mtime, SHA-256); a changed file is a new fingerprint
and is read again. Files still being written are left alone until they settle (or until their done
marker appears). A file is first copied to a local spool while hashing — for SFTP that makes a dropped
connection harmless: nothing of a half-downloaded file is ever parsed. What is said of a file as a whole (a
missing column, a repeated header, the one letter for an unreadable file) is worded in ``adapters.csv.notices``.

A file both globs match is read by the streams its header's own columns say (``Fields.kinds``): a combined
export (a row per line item, its tracking number filled once shipped) by both, parcels first. Only the
stream read last marks it read and archives, deletes or sets it aside, counting the letters of both, and
only once the other stream has read that same version: a stop between the two reads leaves it unmarked, so
both read it again and nothing of it is lost.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from zoneinfo import ZoneInfo

from adapters.base import AdapterContext, FileMark, Page, Record, Rejected, StreamSpec
from adapters.csv.after import advised, after_reading, in_error_folder, stays
from adapters.csv.check import folder_facts, read_as
from adapters.csv.config import CsvConfig
from adapters.csv.files import (FileSource, Hashed, RemoteFile, Unreadable, open_source, parsed_as_hashed, public_url,
                               settling, spooled)
from adapters.csv.grouping import group, is_grouped
from adapters.csv.mapping import Broken, Fields, map_fulfillments, map_order, order_conflicts
from adapters.csv.progress import Done, Start, file_cursor, whole_file
from adapters.csv.notices import file_letter, header_problem, left_out_once, unreadable_files, warn_missing, warn_repeated
from adapters.csv.reader import FileProblem, read_keys, read_rows
from connector.errors import RetryableError

__all__ = ["CsvAdapter"]

_PARTIAL = (".part", ".tmp", ".filepart", ".partial", ".crdownload")


class CsvAdapter:
    type = "csv"
    Config = CsvConfig

    def __init__(self, name: str, config: CsvConfig, context: AdapterContext, *, files: FileSource | None = None) -> None:
        self.name, self.config, self.context = name, config, context
        self._files = files
        self._letters: dict[tuple[str, str, str], int] = {}  # (stream, file, sha256): a combined export's letters, this run
        self._unreadable: dict[str, str] = {}  # file: why it could not be opened, this run (``read`` ends failing)

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
        now = self.context.clock().timestamp()
        return facts + folder_facts(self.config, self.name, self.files, self._globs(), now, self._matches)

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
        if stream == self.streams()[0].name:  # a run starts: what an earlier, unfinished one met is not this run's
            self._unreadable = {}
        for remote in self._candidates(stream):
            yield from self._read_file(stream, remote, resume)
        if self._unreadable and stream == self.streams()[-1].name:  # after both streams: what they read is committed
            problems, self._unreadable = self._unreadable, {}
            raise RetryableError(unreadable_files(problems, "the other files were read; tried again on every poll"))

    # -- selection -----------------------------------------------------------------------------------
    def _globs(self) -> dict[str, str]:
        return {"orders": self.config.orders_glob, "fulfillments": self.config.fulfillments_glob}

    def _matches(self, name: str, pattern: str) -> bool:
        if name.startswith(".") or name.lower().endswith(_PARTIAL):
            return False
        if self.config.done_suffix and name.endswith(self.config.done_suffix):
            return False
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())  # Windows ERPs write ORDERS_1.CSV, Orders_1.csv

    def _readers(self, name: str) -> list[str]:
        """The streams whose glob matches the file, in reading order (both for a combined export)."""
        return [s.name for s in self.streams() if self._matches(name, self._globs()[s.name])]

    def _later(self, stream: str, name: str) -> bool:
        """Whether a stream read after this one reads the file too: that one marks it read and moves it."""
        readers = self._readers(name)
        return stream in readers and readers[-1] != stream

    def _closing(self, stream: str, name: str, sha256: str) -> int | None:
        """The letters to count in the file's mark besides this stream's own (those the streams read before it
        found in this version), or None when this stream does not mark it: a later stream reads it too, or an
        earlier one has not read this version in this run (both read it again on the next poll)."""
        if self._later(stream, name):
            return None
        earlier = [self._letters.get((s, name, sha256)) for s in self._readers(name) if s != stream]
        return None if None in earlier else sum(n for n in earlier if n is not None)

    def _header_readers(self, name: str, fields: Fields) -> list[str]:
        """The streams that read the file: those whose glob matches it; of a file both match, those its header's
        own columns say (``Fields.kinds``): a parcel export with a zip code column is no orders file."""
        readers = self._readers(name)
        return [s for s in readers if s in fields.kinds()] if len(readers) > 1 else readers

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
        if self._read_before(stream, remote, resume):
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
            # Yet no healthy run: ``read`` ends with an error naming it once the other files are read. A race
            # with its writer (changed or swapped as it was opened) is no failure: the next listing settles it.
            if not exc.lasting:
                self.context.log.info("%s; tried again on the next poll", exc)
                return
            self.context.log.debug("%s; the other files are read first", exc)
            self._unreadable[remote.name] = str(exc)
            return
        if done is not None and self._later(stream, remote.name):  # a combined export: the later stream moves it
            if done.rejected is not None:
                self._letters[(stream, remote.name, done.sha256)] = done.rejected
            return
        if done is None or after_reading(self.config, self.files, self.context, remote, done.rejected) or not done.current or self.context.full_sync:
            return
        if not resume.get("move_failed") or resume.get("sha256") != done.sha256:
            # The stored cursor says the move failed: it is retried by the next full sync, not downloaded
            # again on every poll (see _read_before).
            yield Page(cursor=file_cursor(remote.name, done.sha256, done.rejected or 0, move_failed=True))

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
                return Done(seen.rejected if isinstance(seen, FileMark) else None, sha256, current=same)
            closing = self._closing(stream, remote.name, sha256)
            if same and resume.get("complete") and not self.context.full_sync:
                return (yield from self._finished(stream, mark, int(resume.get("rejected", 0)), closing))
            start = Start(resume.get("bucket", 0), resume.get("done", 0), resume.get("layout"), resume.get("rejected", 0)) \
                if same else Start()
            rejected = yield from parsed_as_hashed(local, sha256, self._pages(stream, remote, local, sha256, start, closing),
                                                   remote.name, self.context.log)
            if rejected is None:  # rewritten while it was read: not marked read, read anew on a later run
                return None
        if closing is None and not self._later(stream, remote.name):
            return None  # a combined export the earlier stream has not read in this version: not marked, not moved
        return Done(rejected + (closing or 0), sha256, current=True)

    def _finished(self, stream: str, mark: FileMark, rejected: int, closing: int | None) -> Iterator[Page]:
        """A file this stream read to its end before (its cursor says so), not marked read: for a combined
        export, because a stop came before the other stream's read, or the other stream did not read that
        version; marked now if the other stream has. Its letters are in the cursor, nothing is read again."""
        if self._later(stream, mark.path):
            return Done(rejected, mark.sha256, current=True)
        if closing is None or len(self._readers(mark.path)) < 2:
            return None
        yield Page(done_files=[replace(mark, rejected=rejected + closing)])
        return Done(rejected + closing, mark.sha256, current=True)

    def _read_before(self, stream: str, remote: RemoteFile, resume: dict) -> bool:
        """Read to its end before, judged by name, size and mtime alone: such a file is not opened again.

        Hashing first would download every kept file on every poll (a year of daily SFTP exports, every
        five minutes). A new version with the same size and mtime is the blind spot; a full sync
        (``full_sync_cron``, ``sync --full``) reads everything regardless. A file still to be moved is
        opened and hashed first (only a hash that matches the version read may send it to the archive):
        the stored cursor's file at once (a stop between commit and move), a file whose move failed (the
        cursor says so, or it is not the cursor's file) on the next full sync, so a move that keeps failing
        costs no download per poll. A combined export is moved by the stream read last, never by the other.
        """
        if self.context.full_sync:
            return False
        before = self.context.was_read(remote.name, remote.size, remote.mtime)
        if not before:
            return False
        if resume.get("file") != remote.name or resume.get("move_failed") or self._later(stream, remote.name):
            return True
        return stays(self.config, self.context, before.rejected if isinstance(before, FileMark) else None)

    def _pages(self, stream: str, remote: RemoteFile, local: Hashed, sha256: str, start: Start, closing: int | None) -> Iterator[Page]:
        """The file's pages; ``closing`` as ``_closing`` says (None: its last page does not mark it read)."""
        c = self.config
        with local.open() as f:
            try:
                header, rows = read_rows(f, c.encoding, c.delimiter, lambda lines: warn_repeated(self.context.log, remote.name, lines),
                                         lambda header: Fields(c.columns, header).used())
            except FileProblem as exc:  # a UTF-16 file, a header not valid in the encoding: nothing of it is read
                yield whole_file(remote, sha256, [file_letter(self.config, stream, remote.name, sha256, str(exc))], closing)
                return 1
            fields = Fields(c.columns, header, c.decimal_comma, ZoneInfo(c.timezone))
            if not any(header) and next(rows, None) is None:
                # 0 bytes (or only blank lines): some ERPs write one on a day without orders. Nothing to
                # read is no error; the file is done and archived or deleted like any other.
                self.context.log.info("%s is empty: nothing to read", remote.name)
                yield whole_file(remote, sha256, [], closing)
                return 0
            readers = self._header_readers(remote.name, fields)
            if stream not in readers:  # both globs match it, and its header says it is the other kind: no letter
                self.context.log.info("%s matches the %s glob too, but is read as %s", remote.name, stream, read_as(fields))
                yield whole_file(remote, sha256, [], closing)
                return 0
            if problem := header_problem(self.name, stream, fields):
                yield whole_file(remote, sha256, [file_letter(self.config, stream, remote.name, sha256, problem)], closing)
                return 1
            warn_missing(self.config, self.name, self.context.log, stream, remote.name, fields)
            combined = stream == "fulfillments" and "orders" in readers  # its unshipped lines are the orders' rows
            left_out = left_out_once(self.context.log, remote.name)
            key_index = fields.index["order_number"]
            key = lambda r: r.values[key_index] if key_index is not None and key_index < len(r.values) else ""  # noqa: E731
            with local.open() as again:
                grouped = is_grouped(read_keys(again, c.encoding, c.delimiter, key_index))
            broken = Broken(fields)  # the orders its broken rows name: held back, each a letter of its own
            with group(broken.watch(rows), key, local.size, c.bucket_bytes, grouped, remote.name) as buckets:
                layout = f"{'grouped' if grouped else 'buckets'}/{buckets.count}"
                if start.layout != layout:  # positions mean something else now (e.g. bucket_bytes changed): start over
                    start = Start(layout=layout)
                rejected = start.rejected  # dead letters committed before a stop count towards the error folder
                page = Page()
                for index in range(start.bucket, buckets.count):
                    skip = start.done if index == start.bucket else 0
                    for done, (order_key, order_rows) in enumerate(buckets.groups(index), start=1):
                        if done <= skip:
                            continue  # committed before a crash: same file, same groups, same order
                        for result in self._map(stream, remote.name, order_key, order_rows, fields, combined, left_out, broken):
                            if isinstance(result, Record):
                                page.records.append(result)
                            else:
                                page.rejected.append(advised(self.config, result))
                                rejected += 1
                        if len(page.records) + len(page.rejected) >= c.page_size:
                            page.cursor = file_cursor(remote.name, sha256, rejected, index, done, layout)
                            yield page
                            page = Page()
                    page.cursor = file_cursor(remote.name, sha256, rejected, index + 1, 0, layout)
                page.cursor = file_cursor(remote.name, sha256, rejected)
                if closing is not None:
                    page.done_files = [FileMark(remote.name, remote.size, remote.mtime, sha256, rejected=rejected + closing)]
                yield page
        return rejected

    def _map(self, stream: str, file: str, key: str, rows: list, fields: Fields, combined: bool = False,
             left_out: Callable[[str], None] = lambda said: None, broken: Broken | None = None) -> list[Record | Rejected]:
        """An order's record or its letters; an order's parcels, each on its own (a record and letters).

        ``combined``: the parcels of a combined export, whose orders stream reads it too. A line not shipped yet
        has no tracking number, and a broken row or one without its order number is that stream's letter."""
        c = self.config
        if combined:
            rows = [r for r in rows if key and not r.problem and fields.get(r, "tracking_number")]
            if not rows:
                return []
        if stream == "orders":
            result = map_order(file, key, rows, fields, c.default_currency, broken)
            if isinstance(result, Record) and (conflict := order_conflicts(file, key, rows, fields)):
                self.context.log.warning("%s", conflict)
            return [result] if isinstance(result, Record) else list(result)
        return map_fulfillments(file, key, rows, fields, c.carriers, left_out, broken)
