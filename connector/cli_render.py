"""Rich rendering of command results: tables for people, nothing secret, no customer PII beyond what
the merchant's own dead letters need (order number and location).

Messages shown here come from adapters, Karla and the state file, past the log filter that masks
secrets, so each is masked here as well, and shown with its control characters escaped (``_safe``): a
file name or CSV value may hold terminal escape sequences."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector.logs import printable, redact

__all__ = ["adapters", "check_line", "check_warning", "dead_letter_view", "dead_letters", "misplaced_option_hint", "status",
           "sync_report"]


def _safe(value: object) -> str:
    """Text from a source, Karla or the state file as it may be shown on a terminal: masked, controls escaped, and
    on one line (a newline in a CSV value would otherwise print a line of its own)."""
    return printable(redact(str(value)), lines=False)


def _cell(value: object) -> Text:
    """A table cell of such text: a ``str`` cell would be read as rich markup (``[link=...]`` in a file name)."""
    return Text(_safe(value))


def sync_report(out: Console, report: Any) -> None:
    table = Table(show_edge=False)
    # parts a re-read did not queue, as Karla's version or the waiting one is newer: shown when there are any
    older = any(getattr(counts, "superseded", 0) for counts in report.sources.values())
    columns = ("source", "records read", "parts queued", "unchanged", *(("older, not sent",) if older else ()), "rejected")
    for column in columns:
        table.add_column(column, justify="right" if column != "source" else "left")
    for name, counts in report.sources.items():
        superseded = (str(counts.superseded),) if older else ()
        table.add_row(_cell(name), str(counts.read), str(counts.enqueued), str(counts.unchanged), *superseded, str(counts.rejected))
    dashes = ("-",) * (len(columns) - 2)
    for name, error in report.failures.items():
        table.add_row(_cell(name), *dashes, _cell(f"failed: {error}"))
    for name, error in report.fatal.items():
        table.add_row(_cell(name), *dashes, _cell(f"stopped (fix the configuration): {error}"))
    if report.sources or report.failures or report.fatal:
        out.print(table)
    d = report.delivery
    put_off = getattr(report, "put_off", 0)  # counted at the end of a `sync`: it says these instead
    out.print(
        f"delivered {d.orders} orders and {d.trackings} trackings in {report.requests} Karla requests "
        f"({report.bytes_sent} bytes); dead letters: {report.rejected - d.dead} from the sources, {d.dead} refused by Karla; "
        f"{d.deferred} waiting for their order"
        + (f", {d.postponed} postponed (Karla failed on them alone; tried again later)" if d.postponed and not put_off else ""),
        highlight=False,
    )
    if put_off:
        at = datetime.fromtimestamp(report.put_off_until, timezone.utc).isoformat(timespec="seconds")
        what, it = ("order", "it") if put_off == 1 else ("orders", "them")
        out.print(f"{put_off} {what} put off after Karla failed on {it}; tried again from {at} (`status` lists {it})",
                  style="yellow", highlight=False, markup=False)
    for reason in d.dead_letters[:20]:
        out.print(f"  dead letter: {_safe(reason)}", highlight=False, markup=False)
    if report.karla_error:
        out.print(f"Karla unavailable: {_safe(report.karla_error)} — pending items stay queued", style="red", markup=False)
    if getattr(report, "shop_refused", None):
        out.print(f"{_safe(report.shop_refused)} — that shop's orders stay queued", style="red", markup=False)


def status(out: Console, data: dict[str, Any]) -> None:
    where = f"   state file: {data['state_path']}" if data.get("state_path") else ""
    out.print(f"pending orders: {data['pending']}   dead letters: {data['dead']}{_safe(where)}", highlight=False, markup=False)
    _last_delivery(out, data.get("delivery"))
    waiting = data["waiting"]
    if waiting["count"]:
        out.print(f"{waiting['count']} of them wait after a failed delivery; next to be tried again:", highlight=False)
        for w in waiting["next"]:
            out.print(_safe(f"  order {w['order']} ({w['shop']}) at {w['next_try'] or 'the next drain'}: {w['why']}"),
                      highlight=False, markup=False)
    if data.get("held"):
        by = _safe(", ".join(f"{n} from {source}" for source, n in sorted(data.get("held_by_source", {}).items())))
        out.print(f"{data['held']} of them ({by}) were read by a full sync that is running or did not finish, and may be "
                  "older than what Karla has: they go once a full sync of their source finishes (the nightly one, or "
                  "`sync --full`), or as soon as a plain sync reads them again", highlight=False, markup=False)
    table = Table(show_edge=False)
    for column in ("source", "type", "shop", "pending", "dead", "last run", "cursor"):
        table.add_column(column)
    for name, s in data["sources"].items():
        run = s["last_run"]
        last = f"{run['status']} {run['finished_at'] or run['started_at']}" if run else "never"
        cursor = "; ".join(f"{k}={v}" for k, v in s["cursors"].items()) or "-"
        shown = name if s.get("enabled", True) else f"{name} (disabled)"  # `sync` and `run` leave it unread
        shown = shown if s.get("configured", True) else f"{name} (not configured)"  # renamed or removed: its rows, letters
        table.add_row(*map(_cell, (shown, s["type"], s["shop_slug"], s["pending"], s["dead"], last, cursor[:80])))
    out.print(table)
    _run_errors(out, data["sources"])


def _run_errors(out: Console, sources: dict[str, Any]) -> None:
    """Why each source's last run failed, under the table: "failed <time>" alone sent the merchant to
    `status --json` or the log for the reason (a folder gone, a refused login)."""
    for name, s in sources.items():
        run, failed = s["last_run"], s.get("last_failure")
        if run and run["status"] != "ok" and run.get("error"):
            out.print(f"  {_safe(name)}: {_safe(run['error'])}", style="red", highlight=False, markup=False)
        elif run and run["status"] != "ok" and failed and failed.get("error"):  # running, or cut short: the last reason
            out.print(f"  {_safe(name)}: the last finished run failed at {failed['finished_at']}: {_safe(failed['error'])}",
                      style="red", highlight=False, markup=False)


def _last_delivery(out: Console, run: dict[str, Any] | None) -> None:
    """The last drain that sent something or failed: "pending" alone does not say Karla refuses the key."""
    if not run:
        return
    if run["status"] == "ok":
        out.print(f"last delivery: ok at {run['finished_at']}: {run['delivered']} orders and trackings delivered, "
                  f"{run['dead']} refused by Karla", highlight=False, markup=False)
        return
    out.print(f"last delivery: failed at {run['finished_at']} (failing since {run['started_at']}): "
              f"{_safe(run['error'] or 'no reason recorded')}",
              style="red", highlight=False, markup=False)


def check_line(out: Console, what: str, ok: bool, facts: list[str]) -> None:
    out.print(Text.assemble(("ok", "green") if ok else ("FAILED", "red"), " ", _safe(what)))
    for fact in facts:
        out.print(f"    {_safe(fact)}", highlight=False, markup=False)


def check_warning(out: Console, what: str, facts: list[str]) -> None:
    """A finding that changes no exit code (a config file others may read), marked apart from ok and FAILED."""
    out.print(Text.assemble(("warning", "yellow"), " ", _safe(what)))
    for fact in facts:
        out.print(f"    {_safe(fact)}", highlight=False, markup=False)


def adapters(out: Console, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        head = _safe(f"{row['type']}  ({row['package']} {row['version']}, {row['entry_point']})")
        out.print(head, highlight=False, markup=False)
        if "error" in row:
            out.print(f"    broken: {_safe(row['error'])}", style="red", markup=False)
        for name, description in row.get("fields", {}).items():
            out.print(_safe(f"    {name:<28} {description}"), highlight=False, markup=False)


def dead_letter_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": datetime.fromtimestamp(row.created_at, timezone.utc).isoformat(timespec="seconds"),
        "stage": row.stage,
        "source": row.source,
        "order": row.order_key,
        "location": row.location,
        "reason": row.reason,
        "details": row.details,
    }


def dead_letters(out: Console, rows: list[dict[str, Any]]) -> None:
    if not rows:
        out.print("no dead letters")
        return
    table = Table(show_edge=False)
    for column in ("id", "source", "stage", "order", "location", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        cells = (r["id"], r["source"], r["stage"], r["order"] or "-", r["location"] or "-")
        table.add_row(*map(_cell, (*cells, r["reason"])))
    out.print(table)


_ROOT_OPTIONS = ("--config", "-c", "--debug", "--version")


def misplaced_option_hint(args: list[str]) -> str | None:
    """``karla-connector status --config x.toml``: the program's options go before the command; click only
    says "No such option"."""
    commands = [i for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] not in ("--config", "-c"))]
    late = [a for a in args[commands[0] + 1:] if a.split("=")[0] in _ROOT_OPTIONS] if commands else []
    if not late:
        return None
    return f"hint: {late[0].split('=')[0]} goes before the command, e.g. karla-connector --config PATH {args[commands[0]]} ..."
