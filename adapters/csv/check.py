"""What ``check`` says of a CSV source's folder: how many files each glob matches, which still settle, which
names do not sort by time, and how each file both globs match is read (by its header: ``Fields.kinds``). A
matching file this user cannot open fails the check, as it fails every sync until it can be read.

Apart from ``adapters.csv.adapter``, which decides what is read when: this only words it for the operator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from types import SimpleNamespace

from zoneinfo import ZoneInfo

from adapters.csv.config import CsvConfig
from adapters.csv.fields import ORDER_ONLY, PARCEL_ONLY, Fields
from adapters.csv.files import FileSource, RemoteFile, Unreadable, _local, name_order_warning, settling, unmatched_note
from adapters.csv.local import LocalFolder
from adapters.csv.notices import header_problem, unreadable_files
from adapters.csv.reader import FileProblem, read_rows
from connector.errors import ConfigError

__all__ = ["folder_facts", "read_as"]

_KIND = {"fulfillments": "parcels", "orders": "orders"}
_HEADERS_READ = 10  # files both globs match whose header check opens (each a download's first block over SFTP)
_REMOTE_OPENED = 25  # files check opens over SFTP to see they can be read (a few round trips each); a local folder: all


def folder_facts(config: CsvConfig, source: str, files: FileSource, globs: dict[str, str], now: float,
                 matches: Callable[[str, str], bool]) -> list[str]:
    listing = files.list()
    facts: list[str] = []
    quiet = SimpleNamespace(info=lambda *args: None)
    empty = False
    for stream, pattern in globs.items():
        matching = [f for f in listing if matches(f.name, pattern)]
        empty = empty or not matching
        facts.append(f"{len(matching)} file(s) match {pattern!r} ({stream})")
        waiting = [f for f in matching if settling(f, now, config.settle_seconds, quiet)]
        if waiting:  # a file "not picked up" explains itself here too, not only in an INFO line
            last = max(f.mtime for f in waiting) + config.settle_seconds
            names = sorted(f.name for f in waiting)  # which file "was not picked up" is what the operator asks
            facts.append(f"{len(waiting)} of them changed within settle_seconds ({config.settle_seconds:.0f}s): "
                         f"read from {datetime.fromtimestamp(last, timezone.utc):%H:%M:%S} UTC on")
            facts.append(f"still settling: {_listed(names, 10)}")
        facts += name_order_warning([f.name for f in matching])
    facts += _both(config, source, files, listing, globs, matches)
    facts += _not_read(config, files)
    if empty:  # a glob matching nothing: name the exports it may have been meant for
        others = [f.name for f in listing if not any(matches(f.name, g) for g in globs.values())]
        facts += unmatched_note(others, source)
    matching = sorted({f.name for f in listing if any(matches(f.name, g) for g in globs.values())})
    if problems := _unopened(files, matching):
        raise ConfigError(unreadable_files(problems, "every sync reads the other files and then fails, until this "
                                                     "user may read these"))
    return facts


def _unopened(files: FileSource, names: list[str]) -> dict[str, str]:
    """The files this user cannot open (an export written 0600 by the ERP's user), each with why; the service's
    user is not the one who set the folder up, so the folder's own listing says nothing of it. Over SFTP only
    the last by name (the newest: the ones a sync has yet to read), as each open costs round trips."""
    problems: dict[str, str] = {}
    for name in names if isinstance(files, LocalFolder) else names[-_REMOTE_OPENED:]:
        try:
            with _local(files, name):  # the read's own open, and its words for a refused one
                pass
        except Unreadable as exc:
            problems[name] = str(exc)
        except FileNotFoundError:  # taken away since the listing: nothing to say
            pass
    return problems


def _both(config: CsvConfig, source: str, files: FileSource, listing: list[RemoteFile], globs: dict[str, str],
          matches: Callable[[str, str], bool]) -> list[str]:
    """Files both globs match are read by the streams their header says (README: CSV files): each said, with a
    required column it lacks, so an overlap is no surprise and a misnamed column is found before a sync."""
    names = sorted(f.name for f in listing if all(matches(f.name, g) for g in globs.values()))
    if not names:
        return []
    facts = [f"{len(names)} file(s) match both globs ({_listed(names, 5)}): each is read as its header's columns say "
             "(parcel columns, orders columns, or both: a combined export, read by both streams), and is archived or "
             "deleted only once both have read it"]
    return facts + [_how_read(config, source, files, name) for name in names[:_HEADERS_READ]]


def _not_read(config: CsvConfig, files: FileSource) -> list[str]:
    """Entries the listing leaves out (symbolic links, names no file may have), and an archive or error folder
    files cannot be moved into (a link out of the source folder): each also a WARNING when a sync meets it."""
    notes = list(getattr(files, "skipped", {}).values())
    facts = [f"warning: {note}" for note in notes[:5]] + ([f"warning: and {len(notes) - 5} more not read"] if len(notes) > 5 else [])
    outside = getattr(files, "outside", None)
    folders = {"archive_folder": config.archive_folder if config.after_processing == "archive" else None,
               "error_folder": config.error_folder}
    for option, folder in folders.items():
        if folder and outside is not None and (problem := outside(folder)):
            facts.append(f"warning: {option}: {problem}")
    return facts


def _how_read(config: CsvConfig, source: str, files: FileSource, name: str) -> str:
    """How the streams read one file both globs match, from its header (``Fields.kinds``, as ``_pages`` does)."""
    try:
        with files.open(name) as f:
            header, _ = read_rows(f, config.encoding, config.delimiter)
    except (FileProblem, Unreadable, OSError) as exc:
        return f"{name}: its header could not be read ({exc})"
    if not any(header):
        return f"{name}: empty (no header): read as no orders and no parcels"
    fields = Fields(config.columns, header, config.decimal_comma, ZoneInfo(config.timezone))
    readers = fields.kinds()
    how = (f"{name}: read as {read_as(fields)}" if len(readers) == 1
           else f"{name}: read for its parcels and its orders")
    problems = [f"for its {_KIND[s]}: {_short(p, source)}" for s in readers if (p := header_problem(source, s, fields))]
    return how + "".join(f"; {p}" for p in problems) + (f" (header: {', '.join(header)})" if problems else "")


def _short(problem: str, source: str) -> str:
    """A header letter's reason without the header (said once) and the re-upload advice (nothing was read yet)."""
    reason = problem.partition(" (header:")[0]
    return f"{reason}: map it in [sources.{source}.columns]" if reason.startswith("missing") else reason.partition(":")[0]


def read_as(fields: Fields) -> str:
    """How a file both globs match is read when it is one kind only, and the columns that say so (for the INFO
    line and ``check``)."""
    if parcel := fields.present(PARCEL_ONLY):
        return f"a parcel file only: its header has parcel columns ({', '.join(parcel)}) and none only an orders file has"
    return (f"an orders file only: its header has orders columns ({', '.join(fields.present(ORDER_ONLY))}) and none "
            "only a parcel file has")


def _listed(names: list[str], most: int) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
