"""What the CLI commands do, kept apart from argument parsing so tests and the daemon can call them.

`sync --dry-run` lives in ``connector.dry_run``, the SIGTERM stop of `sync` in ``connector.sync_stop`` and the
read-only state-file checks in ``connector.state_check``; ``run_dry`` is re-exported here for its callers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.control import Control
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.segment import ControlType

from connector import cli_render as render
from connector.app import Connector, ExitCode
from connector.dlq import retry_dead_letters
from connector.dry_run import run_dry
from connector.engine import SourceRuntime, close_adapter, source_log, stream_specs
from connector.errors import ConnectorError, FatalError
from connector.going_live import judge_opened, judge_read_only
from connector.logs import printable, redact
from connector.registry import available, load_adapter
from connector.settings import Settings
from connector.state_check import state_writable as _state_writable
from connector.sync_stop import Stop, Terminated, stopped
from state import DeadLetters, open_state
from state.lock import StateLock

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


NO_SOURCES = ("no [sources.NAME] table is configured: nothing would be read (`karla-connector init FILE` writes "
              "an example config with one, every key explained)")


def lacks_sources(connector: Connector) -> bool:
    """No ``[sources.NAME]`` table at all: `sync`, `check` and `run` refuse it (exit 2), since a daemon that
    starts, reports ready and idles hides the mistake until someone misses the orders."""
    return not connector.sources and not connector.broken and not connector.disabled


def _progress(console: Console) -> Any:
    if not console.is_terminal:
        return nullcontext(None)
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True)


def run_sync(settings: Settings, names: Sequence[str] | None, full: bool, out: Console, err: Console) -> int:
    connector = Connector(settings)
    if lacks_sources(connector):  # as `check` and `run`: a config without sources is a mistake
        connector.close()
        err.print(f"error: {NO_SOURCES}", style="bold red", highlight=False, markup=False)
        return ExitCode.CONFIG
    stop = Stop(connector)
    with stop.installed():  # until the exit code is known: a SIGTERM while the report prints killed the sync
        try:
            with StateLock(settings.state.path, "sync"), _progress(err) as progress:
                judge_opened(settings, connector.db)  # a sandbox's state file against the real Karla: refused (exit 2)
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
            return stopped(err, connector, names, full, sigterm=True) if stop.asked else report.exit_code
        except KeyboardInterrupt as exc:  # every committed page is kept: say so, rather than vanish with exit 130
            return stopped(err, connector, names, full, sigterm=isinstance(exc, Terminated))
        finally:
            connector.close()


def run_check(settings: Settings, out: Console) -> int:
    """Every source, then Karla; one failing source does not hide the others. Returns the exit code:
    0 all reachable, 2 a configuration problem (a source's credentials, a broken plugin), 3 unreachable."""
    from adapters.base import AdapterContext
    from connector.config_file import exposure_found

    judge_read_only(settings)  # a sandbox's state file against the real Karla: refused (exit 2), as `sync` would
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
            with _checking(out, what):
                adapter = rt.adapter_cls(rt.name, rt.config, AdapterContext(source=rt.name, log=source_log(rt), shop_slug=rt.slug))
                facts = _facts(rt, adapter.check())
                stream_specs(rt, adapter.streams())  # none: every sync would read nothing and succeed
            render.check_line(out, what, True, facts)
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
            close_adapter(rt, adapter)
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


@contextmanager
def _checking(out: Console, what: str) -> Iterator[None]:
    """On a terminal, ``checking <source> ...`` while its check runs: a source that hangs is named (its line of
    the report comes only at the end); erased before that line is printed."""
    if out.is_terminal:
        out.print(f"checking {what} ...", end="\r", markup=False, highlight=False)
    try:
        yield
    finally:
        if out.is_terminal:
            out.control(Control((ControlType.ERASE_IN_LINE, 2)))


def _facts(rt: SourceRuntime, facts: Any) -> list[str]:
    """``check()``'s facts; any other result is a bug in the plugin (a str would print one letter a line)."""
    if not isinstance(facts, (list, tuple)):
        raise TypeError(f"{rt.adapter_cls.__module__}.{rt.adapter_cls.__qualname__}.check() must return a list of "
                        f"str, not {type(facts).__name__}")
    return [str(fact) for fact in facts]


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
