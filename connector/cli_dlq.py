"""``karla-connector dlq list|retry|drop``, kept apart from ``connector.cli`` to keep each file short.

The commands use ``connector.cli``'s console and helpers, imported when they run: ``connector.cli`` imports
this module, and so may import it first or last."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from connector import cli_render as render
from connector.errors import ConnectorError, FatalError
from connector.logs import redact_data

__all__ = ["dlq_app"]

dlq_app = typer.Typer(no_args_is_help=True, help="Inspect, retry or drop dead letters.")

# The table shows the oldest letters up to this many: rich measures every cell (about 0.7 ms a letter, minutes for
# 100k), and so many rows are read with a tool anyway: --json lists them all, written as it is (no highlighting).
TABLE_LIMIT = 1000


@dlq_app.command("list")
def dlq_list(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """Show dead letters with the reason and where the record came from (a table of the oldest 1000; --json
    lists all). Works beside `run`."""
    from connector.cli import _code, _fail, _settings, out
    from connector.commands import dead_letters

    try:
        rows = redact_data(dead_letters(_settings(need_api_key=False)))
    except ConnectorError as exc:  # 75 when an older release's daemon holds a file this one would upgrade
        raise _fail(str(exc), _code(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps(rows, default=str, indent=2, ensure_ascii=False) + "\n")
        return
    render.dead_letters(out, rows[:TABLE_LIMIT])
    if len(rows) > TABLE_LIMIT:
        out.print(f"the oldest {TABLE_LIMIT} of {len(rows)} dead letters shown: `dlq list --json` lists them all")


@dlq_app.command("retry")
def dlq_retry(
    ids: Annotated[Optional[list[int]], typer.Argument(metavar="ID", help="Dead-letter ids (see dlq list)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retry every dead letter")] = False,
) -> None:
    """Give dead letters another chance: Karla rejections are re-sent now (unless a newer version went out
    since: then they are dropped); a bad source row's file is read again, and its letter is kept when the
    file is gone. A letter for a shop no source sends to any more, or of a source no longer configured, is kept
    and said (`sync --full`, then `dlq drop`). Exit 1 when a record is dead-lettered again, 2 when any id does
    not exist or a letter is kept so, 130/143 when stopped by Ctrl-C/SIGTERM (what was done is kept)."""
    from connector.cli import _code, _fail, _settings, err, out
    from connector.commands import retry_dead_letters

    if not ids and not all_:
        raise _fail("name dead-letter ids or pass --all")
    if ids and all_:  # which was meant is unclear: --all alone would silently retry more than was named
        raise _fail(f"pass either dead-letter ids ({', '.join(map(str, ids))}) or --all, not both")
    try:
        code = retry_dead_letters(_settings(), None if all_ else ids, out, err)
    except FatalError as exc:
        raise _fail(str(exc), _code(exc)) from None
    raise typer.Exit(code)


@dlq_app.command("drop")
def dlq_drop(ids: Annotated[list[int], typer.Argument(metavar="ID", help="Dead-letter ids (see dlq list)")]) -> None:
    """Delete dead letters for good. Exit 2 when an id names no dead letter. Works beside `run`."""
    from connector.cli import _code, _fail, _settings, out
    from connector.commands import drop_dead_letters

    try:
        dropped, unknown = drop_dead_letters(_settings(need_api_key=False), ids)
    except ConnectorError as exc:
        raise _fail(str(exc), _code(exc)) from None
    out.print(f"dropped {dropped} dead letter(s)")
    if unknown:  # as for `dlq retry`: an id that does not exist is a mistake worth an exit code
        raise _fail(f"{len(unknown)} of the ids named no dead letter: no dead letter with id "
                    f"{', '.join(map(str, unknown))} (see `dlq list`)")
