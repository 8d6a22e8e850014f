"""``karla-connector`` command line (typer + rich). Data goes to stdout, logs and progress to stderr.

Exit codes: 0 all delivered; 1 finished but records were dead-lettered in this run; 2 configuration or
usage error; 3 could not finish (a source or Karla unavailable after retries, or the state file locked by
another process past the busy timeout; what is pending stays pending);
4 internal error (a bug: one line on stderr, the traceback with ``--debug``; what is pending stays pending),
or the state file could not be written (a full disk, an I/O error: one line naming the file, no traceback);
75 the state file is in use by another process (the daemon, another sync): try again later; 130 and 143
`sync` interrupted by Ctrl-C or SIGTERM (what it read is kept; the next sync resumes).
"""

from __future__ import annotations

import errno
import gc
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from connector import cli_init, cli_render as render
from connector.cli_dlq import dlq_app
from connector.errors import ConfigError, ConnectorError, FatalError
from connector.job_errors import StateBusy, busy_message, locked, unwritable
from connector.karla.answers import PLACEHOLDER
from connector.logs import configure_logging, json_line, logs_json, printable, redact, redact_data, register_basic_auth, register_secrets
from connector.settings import Settings, load_settings

__all__ = ["app", "main"]
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, rich_markup_mode=None, help="Sync a shop's orders and fulfillments into the Karla API. Exit codes: 0 all delivered, 1 records dead-lettered, 2 configuration error, 3 could not finish (pending work stays queued; also when another process kept the state file locked), 4 internal error (a bug; --debug shows the traceback) or the state file cannot be written (disk full, I/O error; a service retries it), 75 state file in use by another process (try again later), 130/143 sync interrupted by Ctrl-C/SIGTERM (what it read is kept). Options such as --config go before the command.")
app.add_typer(dlq_app, name="dlq")
app.command("init")(cli_init.init)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _State:
    config: Path | None = None
    debug: bool = False
    state_path: Path | None = None  # named when the state file cannot be written (a full disk)


UNFINISHED = 3  # as ``connector.report.ExitCode.UNFINISHED``: retried by systemd and by the next run
INTERNAL_ERROR = 4


def _fail(message: str, code: int = 2) -> typer.Exit:
    """``message`` on stderr, masked (a server may echo the key into its error) and escaped (it may name a file)."""
    err.print(printable(redact(f"error: {message}")), style="bold red", highlight=False, markup=False)
    return typer.Exit(code)


def _code(exc: BaseException) -> int:
    """2 for a configuration error; a held state lock has its own code (75, ``state.lock.StateInUse``)."""
    return int(getattr(exc, "exit_code", 2))


def _settings(log_stream: object = None, *, need_api_key: bool = True) -> Settings:
    """Settings, with their secrets registered for masking, for every command (``dlq list`` shows stored text
    too): each source's validated ``SecretStr`` values, or, for a table that fails validation, its values
    under secret-named keys (``connector.registry.register_source_secrets``)."""
    from connector.registry import register_source_secrets

    settings = load_settings(_State.config, need_api_key=need_api_key)
    _State.state_path = Path(settings.state.path)
    key = settings.karla.api_key.get_secret_value()
    if key != PLACEHOLDER:  # an old config.example.toml's api_key: public, and the refusal must name it
        register_secrets([key])
        register_basic_auth(settings.karla.user, key)  # as sent: a server echoing the header stores it in an error
    register_source_secrets(settings.sources)
    configure_logging(settings.log.format, settings.log.level, stream=log_stream)
    return settings


def connect_url(url: str) -> str:
    """The sandbox's URL to put in ``base_url``: a wildcard address (``--host 0.0.0.0``) is no address to connect
    to, and ``base_url`` takes plain http only on loopback."""
    return url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:")


def _version(wanted: bool) -> None:
    if wanted:
        from connector import __version__

        out.print(f"karla-connector {__version__}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    # readable=False: click would refuse an unreadable file with a bare message; settings names it with the fix
    config: Annotated[Optional[Path], typer.Option("--config", "-c", readable=False, help="TOML config file (default: $KARLA_CONNECTOR_CONFIG or ./karla-connector.toml)")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="On an internal error (exit 4), print the full traceback")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version and exit")] = False,
) -> None:
    _State.config = config
    _State.debug = debug


@app.command()
def sync(
    source: Annotated[Optional[list[str]], typer.Option("--source", "-s", metavar="NAME", help="Only this source (repeatable); a source with enabled = false is read too when named (a log line says so)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the payloads that would be sent and the records that would be dead-lettered (exit 1 if any); change nothing")] = False,
    full: Annotated[bool, typer.Option("--full", help="Re-read everything since full_sync_since; only differences are sent, once it has read everything (cut short, its changes of orders Karla has wait for the next full sync)")] = False,
) -> None:
    """One pass over the sources and delivery of what they queued, then exit (a big sync delivers while it still reads)."""
    from connector.commands import run_dry, run_sync

    try:
        settings = _settings()
        code = run_dry(settings, source, full, out) if dry_run else run_sync(settings, source, full, out, err)
    except FatalError as exc:
        raise _fail(str(exc), _code(exc)) from None
    raise typer.Exit(code)


@app.command()
def run() -> None:
    """The long-running daemon: polls each source, runs nightly full syncs, drains the outbox.

    Logs to stdout ([log].format: readable text on a terminal, JSON lines otherwise); /healthz, /readyz and
    /metrics on [daemon].health_port; speaks sd_notify when started by systemd. SIGTERM (or SIGINT, SIGHUP)
    finishes the page or batch in flight and exits 0.
    """
    from connector.app import Connector
    from connector.daemon import Daemon

    settings: Settings | None = None
    try:
        settings = _settings(sys.stdout)
        code = Daemon(Connector(settings)).run()
    except FatalError as exc:
        if settings is not None and logs_json(settings.log.format, sys.stdout):  # as `run` logs: a JSON pipeline files it right
            print(json_line(str(exc)), file=sys.stderr, flush=True)
            raise typer.Exit(_code(exc)) from None
        raise _fail(str(exc), _code(exc)) from None
    raise typer.Exit(code)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """The state file's path; per source: cursor, pending, dead letters, last run; the orders waiting after a
    failed delivery, with why; the last delivery that sent something or failed. Needs no secret (neither Karla's API key nor a
    source's); works beside `run`."""
    from connector.status import state_status
    from state import open_state

    try:
        settings = _settings(need_api_key=False)
        db = open_state(settings.state.path, create=False)  # a wrong path is an error, not "nothing pending"
        try:
            data = redact_data(state_status(settings, db))  # errors stored by older versions may hold a secret
        finally:
            db.close()
    except ConnectorError as exc:
        raise _fail(str(exc), _code(exc)) from None  # beside an older release's daemon: 75, as a held lock
    if as_json:
        out.print_json(json.dumps(data))
    else:
        render.status(out, data)


@app.command()
def check() -> None:
    """Validate the config, check the state file can be written, reach each enabled source and Karla (auth), writing nothing.

    Exit 0 all reachable, 2 something to fix (a source's settings, a broken plugin, the sandbox's state file
    against the real Karla), 3 unreachable.
    """
    from connector.commands import run_check

    try:
        code = run_check(_settings(), out)
    except FatalError as exc:
        raise _fail(str(exc), _code(exc)) from None
    raise typer.Exit(code)


@app.command()
def adapters(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """List installed source adapters with their version and config fields."""
    from connector.commands import adapter_table

    rows = adapter_table()
    if as_json:
        out.print_json(json.dumps(rows))
    else:
        render.adapters(out, rows)


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port)")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    user: Annotated[str, typer.Option(help="Accepted API user name")] = "my-shop",
    api_key: Annotated[str, typer.Option(help="Accepted API key")] = "sandbox-key",
    bulk_max_orders: Annotated[int, typer.Option(help="Bulk items accepted per call")] = 50,
    bulk_max_bytes: Annotated[int, typer.Option(help="Bulk body bytes accepted per call")] = 1_000_000,
) -> None:
    """Run a local Karla sandbox (Upsert, Bulk, Search Orders) to try the connector without credentials."""
    from connector.going_live import sandbox_banner
    from connector.sandbox import serve

    listening = False

    def ready(url: str) -> None:
        nonlocal listening
        listening = True
        for line in sandbox_banner(url, connect_url(url), user, api_key):  # the lines to paste; a state file of its own
            err.print(line, highlight=False, markup=False)

    try:
        serve(host=host, port=port, credentials={user: api_key}, bulk_max_items=bulk_max_orders,
              bulk_max_bytes=bulk_max_bytes, ready=ready)
    except OSError as exc:
        if listening:  # failed while serving, not while binding: an internal error like any other
            raise
        if exc.errno == errno.EADDRINUSE:
            raise _fail(f"port {port} is in use: pass --port 0 (any free port) or another port") from None
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help=(
        "Folder for the sample files, config and state. It must not exist, be empty, or be one an earlier "
        "demo wrote (it holds a .karla-demo file): that folder's contents are deleted and written anew. "
        "Any other folder is refused (exit 2), so the demo never deletes your files."
    ))] = Path("demo"),
) -> None:
    """Start the sandbox, write sample CSV files, sync twice and show what happened."""
    from connector.demo import run_demo

    try:
        code = run_demo(workdir, out)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


def _tune_gc() -> None:
    """Keep CPython's cycle collector from rescanning what lives for the whole process.

    A sync allocates millions of short-lived objects (rows, dicts, models) and almost no reference
    cycles. By default every 700 allocations start a collection, and the full ones walk every object
    loaded at start-up; on a 100k-order CSV sync that was about 14 % of the read time. Start-up
    objects are frozen out of collection and collections run less often; cycles are still collected.
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def main() -> None:
    _tune_gc()
    try:
        app()
    except SystemExit as exc:
        if exc.code == 2:  # click's usage error: "No such option: --config" after the command says too little
            hint = render.misplaced_option_hint(sys.argv[1:])
            if hint:
                err.print(hint, highlight=False, markup=False)
        raise
    except ConfigError as exc:  # raised before a command could report it
        err.print(printable(redact(f"error: {exc}")), highlight=False, markup=False)
        sys.exit(_code(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must not look like "records were dead-lettered" (exit 1)
        sys.exit(_internal_error(exc))


def _internal_error(exc: BaseException) -> int:
    """One line naming the error (its message only, never local variables; known secrets masked); the
    traceback only with ``--debug``. Exit 4, which no outcome of a sync shares; a full disk gets it too, so
    that systemd restarts the service and retries the sync unit, but is said as what it is, not as a bug. A state
    file another process kept locked is no bug either: one line, exit 3 (could not finish), as an outage."""
    if _State.debug:
        err.print(printable(redact("".join(traceback.format_exception(exc)))), highlight=False, markup=False, end="")
        hint = ""
    else:
        hint = " (run with --debug for the traceback)"
    if locked(exc):  # another process's write lock (a sqlite3 shell, a slow disk): it passes, as an outage does
        why = str(exc) if isinstance(exc, StateBusy) else busy_message(_State.state_path)
        err.print(printable(redact(f"error: {why}; what is queued stays queued: try again (systemd retries exit 3)")),
                  highlight=False, markup=False)
        return UNFINISHED
    full = unwritable(exc)
    if full is not None:
        file, why = full
        what = file or f"the state file {_State.state_path or ''}".rstrip()
        err.print(printable(redact(f"error: cannot write {what}: {why}; free disk space (or check the disk): what is "
                                   "queued stays queued, and the next run goes on (systemd retries exit 4)")),
                  highlight=False, markup=False)
        return INTERNAL_ERROR
    message = redact(f"{type(exc).__name__}: {exc}".strip().replace("\n", " "))
    err.print(printable(f"internal error: {message}{hint}"), highlight=False, markup=False)
    # With [log].level = DEBUG the traceback also reaches the log (redacted like every line there).
    logging.getLogger("connector").debug("internal error", exc_info=exc)
    return INTERNAL_ERROR
