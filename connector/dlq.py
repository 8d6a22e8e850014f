"""``dlq retry``: give dead letters another chance without overwriting newer data or losing a letter.

- A letter **Karla** refused is queued again as it was sent, unless a newer version of the same part
  has been delivered since the letter was written, or waits in the outbox: then the letter is obsolete,
  and sending it would replace newer data in Karla with older. Such letters are dropped and counted as
  superseded (and what waits is delivered).
- A letter the **source** refused never became a payload, so there is nothing to re-send: its file is
  read again (so a fixed setting such as a carrier override or ``decimal_comma`` takes effect). A row
  that now reads cleanly clears its letter; one still bad refreshes it (with the new reason, same id).
  A letter whose file is gone (archived, moved), whose
  file of that name no longer holds its row (a daily export reusing its name), or whose source has no
  files (Shopify, Shopware), is kept: fix the record at the source, and it clears when it reads cleanly.
  A letter naming no order (a header without a required column, a row without its order number) no
  clean read can match: it clears here, once its file of that name reads to its end without it while
  no file of that name waits set aside by the source (a CSV source's ``error_folder``: the bad file, not
  moved back; what was read under its name is then another export).
- A Karla letter for a shop **no source sends to any more** (a ``shop_slug`` corrected since) is kept, said
  so, exit 2: sent to the old shop it comes back, and sent to the shop its source sends to now it could replace
  newer data there (or send a routed order to another shop); `sync --full` reads the order as it is now.
- A letter of a source **no longer configured** (renamed, removed) or not valid is kept, said so, exit 2.
- A state file the **sandbox** filled, used against a Karla elsewhere, is refused (exit 2) as `sync` refuses it,
  before any letter moves (``connector.going_live``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rich.console import Console

from adapters.base import AdapterContext
from connector import cli_render as render
from connector.app import Connector, ExitCode, SyncReport
from connector.dlq_shops import for_no_shop, shops_now, unusable
from connector.engine import SourceRuntime, close_adapter
from connector.pages import requeue_letter
from connector.replay import Replay
from connector.errors import ConnectorError
from connector.going_live import judge_opened
from connector.logs import printable, redact
from connector.settings import Settings
from connector.sync_stop import Stop, Terminated, retry_interrupted
from state import DeadLetterRow, DeadLetters, Files, origin
from state.db import require_existing
from state.lock import StateLock

__all__ = ["RetryPlan", "retry_dead_letters"]


@dataclass
class RetryPlan:
    queued: list[int] = field(default_factory=list)  # Karla letters back in the outbox
    superseded: list[int] = field(default_factory=list)  # a newer version went out (or waits) since
    reread: dict[int, tuple[str, str]] = field(default_factory=dict)  # letter id -> (source, file) to read again
    about: dict[str, list[DeadLetterRow]] = field(default_factory=dict)  # source -> the letters it reads again for
    karla: list[DeadLetterRow] = field(default_factory=list)  # Karla's letters, queued after the re-reads
    kept: list[DeadLetterRow] = field(default_factory=list)  # nothing this command can do
    unusable: dict[int, str] = field(default_factory=dict)  # Karla letters whose stored item makes no record: why
    unmatched: dict[int, str] = field(default_factory=dict)  # letters naming no order kept though read: why
    dropped: list[int] = field(default_factory=list)  # letters `dlq drop` took while this ran: not sent
    stuck: dict[int, str] = field(default_factory=dict)  # kept until the configuration or a person acts: why (exit 2)


def _plan(rows: Sequence[DeadLetterRow], connector: Connector) -> RetryPlan:
    """Karla's letters wait for ``_requeue_karla`` (but those for a shop no source sends to any more:
    ``for_no_shop``); a source letter's file is read again (``Replay``: its stream from the start, the file though
    read before; nothing is forgotten in the state file)."""
    plan = RetryPlan()
    shops = shops_now(connector)
    for row in rows:
        path = origin(row.location)
        if row.stage == "karla":
            if (why := for_no_shop(connector, row, shops)) is None:
                plan.karla.append(row)  # to its own shop, as written: a plugin's routed order, a shop removed on purpose
            else:
                plan.stuck[row.id] = why
        elif (why := unusable(connector, row.source)) is not None:
            plan.stuck[row.id] = f"{why}, and nothing reads their rows again under that name: see that Karla has them"
        elif path and path != row.location:  # ``file:line``: a file the source can read again
            plan.reread[row.id] = (row.source, path)
            plan.about.setdefault(row.source, []).append(row)
        else:
            plan.kept.append(row)
    return plan


def _requeue_karla(conn: Any, plan: RetryPlan, now: float) -> None:
    """Newest letters first: once a part is queued from the newest, an older letter of the same part counts
    as superseded (``changed_since``) instead of being queued over it. After the re-reads, so that a source
    letter's fixed, newer version read by them supersedes an older letter of Karla's, not the other way.
    A letter whose stored item no longer makes a record is kept, with why (``RetryPlan.unusable``). Only letters
    still there (in this write transaction) go: `dlq drop` works beside this command, during the re-reads."""
    present = {row.id for row in DeadLetters(conn).list([row.id for row in plan.karla])} if plan.karla else set()
    plan.dropped += [row.id for row in plan.karla if row.id not in present]
    for row in sorted(plan.karla, key=lambda r: (r.created_at, r.id), reverse=True):
        if row.id not in present:
            continue
        try:
            (plan.queued if requeue_letter(conn, row, now) else plan.superseded).append(row.id)
        except ValueError as exc:
            plan.unusable[row.id] = str(exc)
    DeadLetters(conn).delete(plan.queued + plan.superseded)


def _reread(connector: Connector, plan: RetryPlan, report: SyncReport, out: Console,
            stop: Callable[[], None]) -> list[int]:
    """Sync each source with letters' files to read again (its counts go into ``report``: a row still bad is
    a new letter and makes the exit code 1); returns the letters whose row was read again. ``stop`` raises
    ``Terminated`` after a committed page once SIGTERM came: a read cut short must clear no letter. A letter
    gone that no page of the re-read cleared was dropped (`dlq drop`) meanwhile: its records were left out."""
    done: list[int] = []
    since = connector.now()
    for source in sorted({s for s, _ in plan.reread.values()}):
        letters = plan.about.get(source, [])
        replay = _about(letters)
        try:
            # a replay: only the letters' orders go; the file's others may have newer versions since
            report.sources[source] = connector.sync_one(_at_once(connector.sources[source]),
                                                        replay=replay, on_page=lambda _counts: stop())
            stop()  # a retry wait the signal cut short ends the read without raising
        except (ConnectorError, OSError, KeyError) as exc:
            out.print(f"source {source} could not be read again ({printable(redact(str(exc)))}); its letters are kept",
                      style="yellow", markup=False, highlight=False)
            report.failures[source] = str(exc)
            continue
        aside = _set_aside(connector.sources[source], _no_order(letters))
        with connector.db.transaction() as conn:
            mine = [i for i, (name, _) in plan.reread.items() if name == source]
            by_id = {row.id: row for row in DeadLetters(conn).list(mine)}
            for i in mine:
                if i not in by_id and i not in replay.cleared:
                    plan.dropped.append(i)
                    continue
                why = _read_again(conn, by_id.get(i), since, aside)
                if why is None:
                    done.append(i)
                elif why:
                    plan.unmatched[i] = why
    return done


def _no_order(letters: Sequence[DeadLetterRow]) -> set[str]:
    return {path for row in letters if row.order_key is None and (path := origin(row.location))}


def _set_aside(rt: SourceRuntime, paths: set[str]) -> dict[str, str] | None:
    """Where the source holds files of these names set aside, out of its reads (a CSV source's ``error_folder``),
    asked through the adapter's optional ``set_aside(path)``, so the engine knows no adapter's folders; None
    when it could not tell (their letters are kept)."""
    if not paths:
        return {}
    log = logging.LoggerAdapter(logging.getLogger(f"adapters.{rt.config.type}"), {"source": rt.name})
    adapter: Any = None
    try:
        adapter = rt.adapter_cls(rt.name, rt.config, AdapterContext(source=rt.name, log=log, shop_slug=rt.slug))
        ask = getattr(adapter, "set_aside", None)
        found = {path: ask(path) for path in paths} if callable(ask) else {}
        return {path: where for path, where in found.items() if where}
    except (ConnectorError, OSError):
        return None
    finally:  # a plugin's close() that raises is a WARNING: the re-read is done and its letters stand
        close_adapter(rt, adapter)


def _about(letters: Sequence[DeadLetterRow]) -> Replay:
    """The records a re-read is for: a letter's order by its key, in the letter's file; every record of a
    file with a letter that names no order (a row without its order number: which order it belongs to is
    known once fixed), where the versions still keep an older read from going."""
    return Replay(orders=frozenset((origin(row.location), row.order_key) for row in letters if row.order_key),
                  whole=frozenset(origin(row.location) for row in letters if not row.order_key),
                  streams=frozenset(row.stream for row in letters if row.stream),
                  letters=tuple((row.id, origin(row.location), row.order_key or None) for row in letters))


def _at_once(rt: SourceRuntime) -> SourceRuntime:
    """The source without its settle wait: the user has just put the fixed file back (a move, complete at
    once) and asked for it; waiting a minute made this command report the file as gone."""
    if "settle_seconds" not in type(rt.config).model_fields:
        return rt
    return replace(rt, config=rt.config.model_copy(update={"settle_seconds": 0.0}))


def _read_again(conn: Any, row: DeadLetterRow | None, since: float, aside: dict[str, str] | None) -> str | None:
    """None when the re-read reached this letter's record: cleared by a clean read (gone), still bad
    (refreshed since ``since``), or, for a letter naming no order (a header, a row without its order
    number), its file read to its end since without it while no file of that name waits ``aside``: fixed,
    so the letter goes here, as no clean read can match it.
    Otherwise the letter stays: its file is gone, or the file of that name no longer holds its row (a
    daily export reusing its name): "" or, for a letter naming no order read under its name, why."""
    if row is None or row.created_at >= since:
        return None
    path = origin(row.location)
    if row.order_key is None and path and Files(conn).read_since(row.source, path, since):
        if aside is None:
            return f"whether its bad {path} still waits in the source's error folder could not be checked"
        if path in aside:
            return f"its bad file still waits in {aside[path]}, and the {path} read now is another export"
        DeadLetters(conn).delete([row.id])
        return None
    if row.order_key is None and path and not Files(conn).has(row.source, path):
        return (f"the source has never said it read {path} to its end (a file that went before it was read whole; "
                "a plugin reports each file it read whole in its pages' done_files, docs/adapters.md)")
    return ""


def retry_dead_letters(settings: Settings, ids: Sequence[int] | None, out: Console, err: Console | None = None) -> int:
    """Exit code as ``sync``'s: 1 when a retried record is dead-lettered again; at least 2 when an id given does
    not exist (a mistyped id among good ones is still a mistake, as for ``dlq drop``) or a letter is kept until
    the configuration or a person acts (``RetryPlan.stuck``: no later run clears it); 130/143 when Ctrl-C or
    SIGTERM stopped it as they stop `sync` (``connector.sync_stop``: SIGTERM's default killed it mid-request)."""
    connector = Connector(settings)
    report = SyncReport()
    stop = Stop(connector)
    try:
        require_existing(settings.state.path)  # a wrong path is an error, not an empty store (nor a new lock file)
        # the lock before the file is opened: opening upgrades it, and an older release's daemon holding it
        with stop.installed(), StateLock(settings.state.path, "dlq retry"):  # could not open it again
            # the sandbox's state file against a Karla elsewhere: refused (exit 2) as `sync` refuses it, before a
            # letter is moved (it stays in `dlq list`) or anything is sent
            judge_opened(settings, connector.existing_db())
            with connector.db.read() as conn:
                rows = DeadLetters(conn).list(ids)
            plan = _plan(rows, connector)
            unknown = sorted(set(ids or ()) - {row.id for row in rows})
            if unknown:
                out.print(f"[yellow]no dead letter with id {', '.join(map(str, unknown))}[/] (see `dlq list`)")
            reread = _reread(connector, plan, report, out, stop.page) if plan.reread else []
            with connector.db.transaction() as conn:
                _requeue_karla(conn, plan, connector.now())
            _summary(out, plan, reread)
            read = any(counts.enqueued for counts in report.sources.values())  # say a new export the re-read met
            if (plan.queued or plan.superseded or reread or read) and not stop.asked:  # a superseding version may
                connector.deliver_into(report)  # still wait: it goes now
                render.sync_report(out, report)
        if stop.asked:  # the answer to the request on the wire is recorded; the rest waits for the next sync
            return retry_interrupted(err or out, sigterm=True)
        return max(report.exit_code, ExitCode.CONFIG) if unknown or plan.stuck else report.exit_code
    except KeyboardInterrupt as exc:
        return retry_interrupted(err or out, sigterm=isinstance(exc, Terminated))
    finally:
        connector.close()


def _grouped(by_id: dict[int, Any]) -> dict[Any, tuple[str, str]]:
    """Letters by what is said of them, one line for a renamed source's thousand: (their ids, what to drop)."""
    groups: dict[Any, list[int]] = {}
    for i, what in sorted(by_id.items()):
        groups.setdefault(what, []).append(i)
    return {what: (", ".join(map(str, ids[:10])) + (f" and {len(ids) - 10} more" if len(ids) > 10 else ""),
                   " ".join(map(str, ids)) if len(ids) <= 10 else "ID...") for what, ids in groups.items()}


def _summary(out: Console, plan: RetryPlan, reread: list[int]) -> None:
    out.print(f"queued {len(plan.queued)} dead letter(s) again")
    for why, (ids, drop) in _grouped(plan.stuck).items():
        out.print(f"kept letter(s) {ids}: {printable(why)}; then `dlq drop {drop}`", style="yellow", markup=False,
                  highlight=False)
    if plan.dropped:
        out.print(f"not sent: letter(s) {', '.join(map(str, plan.dropped))}, dropped (`dlq drop`) while this "
                  "command ran")
    if plan.superseded:
        out.print(f"dropped {len(plan.superseded)} superseded letter(s): a newer version was delivered, queued or refused since")
    if reread:
        out.print(f"read {len(reread)} letter(s)' rows again (those still bad keep their letter, with today's reason)")
    for letter, why in plan.unusable.items():  # written by an older release, before a record was checked so
        out.print(f"kept letter {letter}: its stored order cannot be sent again ({printable(redact(why))}); fix the order "
                  f"at its source (it is read again and sent), then `dlq drop {letter}`", markup=False, highlight=False)
    for letter, why in plan.unmatched.items():
        out.print(f"kept letter {letter} naming no order: {printable(why)}; move the fixed file back into the source "
                  f"folder under that name, then `dlq retry` again (or `dlq drop {letter}` once its orders are in Karla)",
                  markup=False, highlight=False)
    unread = [i for i in plan.reread if i not in reread and i not in plan.unmatched and i not in plan.dropped]
    kept = [row.id for row in plan.kept] + unread
    if kept:
        out.print(
            f"kept {len(kept)} letter(s) the source rejected ({', '.join(map(str, kept[:10]))}): their file is gone, no "
            "longer holds their row, or the source has no files; fix the record at the source and it clears when it "
            "reads cleanly (a letter naming no order: when `dlq retry` reads its fixed file); a letter that can never "
            "match a clean read (a parcel row without its tracking number): drop it with `dlq drop ID` once what it "
            "held is in Karla"
        )
