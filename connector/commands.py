"""What the CLI commands do, kept apart from argument parsing so tests and the daemon can call them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from connector import cli_render as render
from connector.app import Connector, ExitCode
from connector.dlq import retry_dead_letters
from connector.items import Item, pending_groups
from connector.errors import ConfigError, ConnectorError, FatalError
from connector.logs import printable, redact, redact_data
from connector.registry import available, load_adapter
from connector.settings import Settings
from state import SCHEMA_VERSION, DeadLetters, open_state
from state.db import read_only_uri
from state.lock import StateLock, refusal

__all__ = [
    "adapter_table",
    "dead_letters",
    "drop_dead_letters",
    "lacks_sources",
    "retry_dead_letters",
    "run_check",
    "run_dry",
    "run_sync",
]


NO_SOURCES = "no [sources.NAME] table is configured: nothing would be read (see config.example.toml)"


def lacks_sources(connector: Connector) -> bool:
    """No ``[sources.NAME]`` table at all: `sync`, `check` and `run` refuse it (exit 2), since a daemon that
    starts, reports ready and idles hides the mistake until someone misses the orders."""
    return not connector.sources and not connector.broken and not connector.disabled


def _progress(console: Console) -> Any:
    if not console.is_terminal:
        return nullcontext(None)
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM (`systemctl stop`, a shutdown during the timer's run) ends `sync` where Ctrl-C would."""


class _Stop:
    """SIGTERM stops `sync` as it stops the daemon: reading ends after the page in flight is committed and
    counted (``page``), the request on the wire is answered and recorded (the delivery process is told to stop,
    and ignores the signal itself; the in-process drain is aborted), retries end at once. Its default action
    killed the sync: no word, and the run recorded as read: 0. A second SIGTERM ends the process at once."""

    def __init__(self, connector: Connector) -> None:
        self.connector, self.asked = connector, False

    def __call__(self, _signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.asked = True
        self.connector.client  # noqa: B018 - created now if need be: a drain still to come must stop as well
        self.connector.abort()

    def page(self) -> None:
        if self.asked:
            raise Terminated("stopped by SIGTERM")

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # signal.signal works there only
            yield
            return
        previous = signal.signal(signal.SIGTERM, self)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)


def run_sync(settings: Settings, names: Sequence[str] | None, full: bool, out: Console, err: Console) -> int:
    connector = Connector(settings)
    if lacks_sources(connector):  # as `check` and `run`: a config without sources is a mistake
        connector.close()
        err.print(f"error: {NO_SOURCES}", style="bold red", highlight=False, markup=False)
        return ExitCode.CONFIG
    stop = _Stop(connector)
    try:
        with stop.installed(), StateLock(settings.state.path, "sync"), _progress(err) as progress:
            task = progress.add_task("reading sources", total=None) if progress else None
            seen = {"orders": 0, "sent": 0}

            def on_page(counts: Any) -> None:
                seen["orders"] += counts.read
                if progress:
                    progress.update(task, description=f"read {seen['orders']} orders")
                stop.page()

            def on_batch(n: int) -> None:
                seen["sent"] += n
                if progress:
                    progress.update(task, description=f"delivered {seen['sent']} orders")

            report = connector.sync(names, full=full, on_page=on_page, on_batch=on_batch)
        render.sync_report(out, report)
        return _interrupted(err, full, sigterm=True) if stop.asked else report.exit_code
    except KeyboardInterrupt as exc:  # every committed page is kept: say so, rather than vanish with exit 130
        return _interrupted(err, full, sigterm=isinstance(exc, Terminated))
    finally:
        connector.close()


def _interrupted(err: Console, full: bool, *, sigterm: bool) -> int:
    """Exit 130 for Ctrl-C, 143 (128 + SIGTERM, as a shell tells a process SIGTERM ended) for SIGTERM."""
    how = " (SIGTERM)" if sigterm else ""
    said = (f"interrupted{how}: what this full sync queued is kept but held (it may hold older versions it "
            "replayed) until a full sync finishes: run sync --full again" if full else
            f"interrupted{how}: what was read so far is queued and kept; the next sync resumes from there")
    err.print(f"{said} (karla-connector status shows what is pending)", highlight=False)
    return 143 if sigterm else 130


def run_dry(settings: Settings, names: Sequence[str] | None, full: bool, out: Console) -> int:
    """Sync into a throw-away copy of the state file and print the items delivery would send."""
    with tempfile.TemporaryDirectory(prefix="karla-dry-") as tmp:
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


def _copy_as_is(path: Path, copy: Path) -> None:
    """Back the state file up read-only, without upgrading it: an upgrade is one way (an older release then
    refuses the file), and the dry run takes no lock, so it would also upgrade the file under an older
    release's running daemon. Only the copy is upgraded, by the dry run's ``open_state``."""
    problem = _schema_problem(path)  # not SQLite, or newer: said of the real path, not of the copy
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


def run_check(settings: Settings, out: Console) -> int:
    """Every source, then Karla; one failing source does not hide the others. Returns the exit code:
    0 all reachable, 2 a configuration problem (a source's credentials, a broken plugin), 3 unreachable."""
    from adapters.base import AdapterContext
    from connector.config_file import exposure_found

    connector = Connector(settings)
    code = ExitCode.OK
    for warning in exposure_found():  # logged at start too; a warning, the exit code stays
        render.check_warning(out, "config file", [warning])
    state_ok, state_fact = _state_writable(Path(settings.state.path))
    render.check_line(out, f"state file {settings.state.path}", state_ok, [state_fact])
    if not state_ok:
        code = ExitCode.CONFIG
    if lacks_sources(connector):
        render.check_line(out, "sources", False, [NO_SOURCES])
        code = ExitCode.CONFIG
    for name, error in connector.broken.items():
        code = ExitCode.CONFIG
        render.check_line(out, f"source {name}", False, [error])
    for name, error in connector.disabled.items():
        out.print(f"[dim]disabled[/] source {name}: enabled = false, not checked; not valid either:", highlight=False)
        out.print(f"    {printable(redact(error))}", markup=False, highlight=False)
    for rt in connector.sources.values():
        what = f"source {rt.name} ({rt.config.type})"
        if not rt.config.enabled:
            out.print(f"[dim]disabled[/] {what}: enabled = false, not checked")
            continue
        adapter = None
        try:
            adapter = rt.adapter_cls(rt.name, rt.config, AdapterContext(source=rt.name))
            render.check_line(out, what, True, adapter.check())
        except FatalError as exc:
            code = ExitCode.CONFIG
            render.check_line(out, what, False, [str(exc)])
        except (ConnectorError, OSError) as exc:
            code = _worse(code, ExitCode.UNFINISHED)
            render.check_line(out, what, False, [str(exc)])
        except Exception as exc:  # noqa: BLE001 - a bug in a plugin: say so, check the rest
            code = ExitCode.CONFIG
            render.check_line(out, what, False, [f"the adapter failed: {type(exc).__name__}: {exc}"])
        finally:
            close = getattr(adapter, "close", None)
            if callable(close):
                close()
    slugs = sorted({rt.slug for rt in connector.sources.values()} | {settings.karla.shop_slug}
                   | {s for rt in connector.sources.values() for s in rt.config.shop_slugs()})  # Shopware's sales_channels too
    authenticated: list[str] = []
    try:
        for slug in slugs:
            connector.client.check(slug)
            authenticated.append(f"authenticated for shop {slug} (by a read: sending needs an editor key, "
                                 "which check cannot tell from a viewer key)")
        tls = [f"WARNING: {w}" for w in [connector.client.tls_warning] if w]  # verify_tls = false: logged, and said here
        render.check_line(out, f"Karla {settings.karla.base_url}", True, authenticated + tls)
    except FatalError as exc:  # a refused key: in the report like a failing source, and on stderr as before (exit 2)
        render.check_line(out, f"Karla {settings.karla.base_url}", False, [*authenticated, str(exc)])
        raise
    except ConnectorError as exc:
        code = _worse(code, ExitCode.UNFINISHED)
        render.check_line(out, f"Karla {settings.karla.base_url}", False, [str(exc)])
    finally:
        connector.close()
    return code


def _state_writable(path: Path) -> tuple[bool, str]:
    """Whether a sync could open the state file and its lock, judged without creating or changing either:
    `check` must not say "ok" for a file `sync` then refuses (a lock a root run left, a newer schema, a file
    that is not SQLite, a folder below a regular file), so it runs the same tests read-only."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return False, "[state].path names a folder: it must name a file (created if missing)"
    if not folder.is_dir():
        return _missing_folder(folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        return False, f"folder {folder} is not writable by this user ([state].path, KARLA_CONNECTOR_STATE__PATH)"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return False, f"{path} is not readable and writable by this user"
    problem = _lock_problem(Path(f"{path}.lock")) or (_schema_problem(path) if path.exists() else None)
    if problem:
        return False, problem
    return True, "exists, writable" if path.exists() else "not created yet; the folder is writable"


def _missing_folder(folder: Path) -> tuple[bool, str]:
    """A missing folder is created by the first sync, unless what exists of its path ends in a regular file."""
    existing = _existing(folder)
    if not existing.is_dir():
        return False, (f"cannot create folder {folder}: {existing} is a file, not a folder; [state].path "
                       "(KARLA_CONNECTOR_STATE__PATH) must name a file in a folder")
    return os.access(existing, os.W_OK), f"folder {folder} does not exist yet; it is created on the first sync"


def _lock_problem(lock: Path) -> str | None:
    """A lock file left by a run as another user (README's root `sync` beside the service) stops every sync:
    open it as the lock does, without creating it, and word the refusal as ``StateLock`` does."""
    if not lock.exists():
        return None
    try:
        os.close(os.open(lock, os.O_RDWR))
    except OSError as exc:
        return refusal(lock, exc)
    return None


def _schema_problem(path: Path) -> str | None:
    """What ``open_state`` would refuse: not SQLite, or a schema newer than this release's. Read-only and
    creating nothing (``read_only_uri``)."""
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):  # a writer holds it this instant: nothing wrong with the file
            return None
        return _not_sqlite(path, exc)
    except sqlite3.DatabaseError as exc:
        return _not_sqlite(path, exc)
    if version > SCHEMA_VERSION:
        return (f"state file {path} has schema version {version}, newer than this release understands "
                f"({SCHEMA_VERSION}); upgrade karla-connector or point [state].path elsewhere")
    return None


def _not_sqlite(path: Path, exc: Exception) -> str:
    return (f"cannot open the state file {path}: {exc}; [state].path (KARLA_CONNECTOR_STATE__PATH) must name a "
            "SQLite file (created if missing) in a writable folder")


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _worse(code: int, other: int) -> int:
    """A configuration problem (2) outranks an unreachable service (3): it is the one that needs a human."""
    return ExitCode.CONFIG if ExitCode.CONFIG in (code, other) else max(code, other)


def adapter_table() -> list[dict[str, Any]]:
    rows = []
    for info in available():
        row: dict[str, Any] = {"type": info.type, "entry_point": info.entry_point, "package": info.distribution, "version": info.version}
        try:
            cls = load_adapter(info.type)
            row["fields"] = {name: (f.description or "") for name, f in cls.Config.model_fields.items()}
        except ConnectorError as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    db = open_state(settings.state.path, create=False)
    try:
        with db.read() as conn:
            return [render.dead_letter_view(row) for row in DeadLetters(conn).list()]
    finally:
        db.close()


def drop_dead_letters(settings: Settings, ids: Sequence[int]) -> tuple[int, list[int]]:
    """How many letters went, and the ids that named none: those are named back, as `dlq retry` does."""
    db = open_state(settings.state.path, create=False)
    try:
        with db.transaction() as conn:
            found = {row.id for row in DeadLetters(conn).list(ids)}
            return DeadLetters(conn).delete(sorted(found)), sorted(set(ids) - found)
    finally:
        db.close()
