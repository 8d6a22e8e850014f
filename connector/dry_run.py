"""`sync --dry-run`: a sync into a throw-away copy of the state file, printing what delivery would send. Kept
apart from ``connector.commands`` because copying the state file without upgrading or locking it is a piece
of its own (``_copy_as_is``)."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from connector.app import Connector, ExitCode
from connector.errors import ConfigError, FatalError
from connector.going_live import judge_read_only
from connector.items import Item, pending_groups
from connector.job_errors import locked, unwritable
from connector.logs import redact_data
from connector.scratch import no_temp_folder
from connector.settings import Settings
from connector.state_check import schema_problem
from state import DeadLetters
from state.db import read_only_uri

__all__ = ["NoTempFolder", "run_dry"]


class NoTempFolder(FatalError):
    """No writable temporary folder for the copy: one line naming TMPDIR and exit 3 (could not finish), as the
    CSV source's temporary files say it, instead of "internal error: FileNotFoundError", exit 4 (a bug)."""

    exit_code = ExitCode.UNFINISHED


def run_dry(settings: Settings, names: Sequence[str] | None, full: bool, out: Console) -> int:
    """Sync into a throw-away copy of the state file and print the items delivery would send."""
    judge_read_only(settings)  # the sandbox's file against the real Karla: refused as `sync` refuses it, not "unchanged"
    try:
        folder = tempfile.TemporaryDirectory(prefix="karla-dry-")
    except FileNotFoundError as exc:  # tempfile's "No usable temporary directory": a read-only root, a full /tmp
        raise NoTempFolder(no_temp_folder("hold the dry run's copy of the state file", exc)) from None
    with folder as tmp, _room_for_copy(Path(settings.state.path)):
        copy = Path(tmp) / "state.db"
        if settings.state.path.exists():
            _copy_as_is(Path(settings.state.path), copy)
        dry = settings.model_copy(update={"state": settings.state.model_copy(update={"path": copy})})
        connector = Connector(dry)
        try:
            started = connector.now()
            report = connector.sync(names, full=full, deliver=False, dry_run=True)
            items = [json.loads(Item.build(rows).body) for rows in pending_groups(connector.db)]
            with connector.db.read() as conn:  # the letters this read wrote (or refreshed) in the copy
                letters = [{"location": r.location, "reason": r.reason} for r in DeadLetters(conn).list() if r.created_at >= started]
        finally:
            connector.close()
    failures = redact_data({**report.failures, **report.fatal})
    out.print_json(json.dumps({"would_send": items, "would_dead_letter": letters, "failures": failures}, ensure_ascii=False))
    return ExitCode.CONFIG if report.fatal else ExitCode.UNFINISHED if report.failures else \
        ExitCode.DEAD_LETTERS if letters else ExitCode.OK


@contextmanager
def _room_for_copy(state: Path) -> Iterator[None]:
    """A full temporary folder (a small tmpfs at /tmp) while copying the state file or syncing into the copy: said
    of that folder and TMPDIR, exit 3. The CLI would blame the real state file ("free disk space", exit 4), which
    the dry run never writes. The only files written here are the copy and its -wal."""
    try:
        yield
    except Exception as exc:
        full = None if locked(exc) else unwritable(exc)
        if full is None:
            raise
        size = sum(os.path.getsize(f) for f in (state, Path(f"{state}-wal")) if f.exists())
        raise NoTempFolder(
            f"the temporary folder {tempfile.gettempdir()} has no room for the dry run's copy of the state file "
            f"{state} ({size:,} bytes, and what the dry run reads into it): {full[1]}; set the TMPDIR environment "
            "variable to a folder with room (the dry run does not write the state file itself)") from None


def _copy_as_is(path: Path, copy: Path) -> None:
    """Back the state file up read-only, without upgrading it: an upgrade is one way (an older release then
    refuses the file), and the dry run takes no lock, so it would also upgrade the file under an older
    release's running daemon. Only the copy is upgraded, by the dry run's ``open_state``."""
    problem = schema_problem(path)  # not SQLite, or newer: said of the real path, not of the copy
    if problem:
        raise ConfigError(problem)
    uri = read_only_uri(path)
    _backup(uri, copy)
    if uri.endswith("immutable=1") and "immutable=1" not in read_only_uri(path):  # a daemon opened it meanwhile
        _backup(read_only_uri(path), copy)


def _backup(uri: str, copy: Path) -> None:
    source, target = sqlite3.connect(uri, uri=True), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
