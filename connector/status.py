"""What ``karla-connector status`` shows: the state file's view of each configured source.

It reads the raw ``[sources.NAME]`` tables rather than validated source configs: an operator runs it in a
shell beside the service, where the secrets a source's ``Config`` requires (``LoadCredential=`` files
only the service can read) are missing, and showing cursors and counts needs none of them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from datetime import datetime, timezone
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import DatabaseError

from connector.job_errors import is_state_trouble
from connector.logs import redact
from connector.sender import SHOP_REFUSED, DeliveryResult
from connector.settings import Settings
from state import Cursors, DeadLetters, Outbox, Runs, StateDB
from state.lock import lock_holder

__all__ = ["keep_delivery", "state_status"]

log = logging.getLogger("connector")


def state_status(settings: Settings, db: StateDB) -> dict[str, Any]:
    """The counts, and the absolute path of the file they come from: a relative ``[state].path`` is read next
    to the config file, and "nothing pending" from the wrong file is the mistake to rule out first."""
    with db.read() as conn:
        pending = Outbox(conn).pending_by_source()
        dead = DeadLetters(conn).count_by_source()
        sources = {
            name: {
                "type": str(raw.get("type", "")),
                "shop_slug": raw.get("shop_slug") or settings.karla.shop_slug,
                "enabled": _enabled(raw),
                "cursors": Cursors(conn).all(name),
                "pending": pending.get(name, 0),
                "dead": dead.get(name, 0),
                "last_run": Runs(conn).last(name),
                "last_failure": _failure(Runs(conn).last_failure(name)),
                "configured": True,
            }
            for name, raw in settings.sources.items()
        }
        sources.update(_unconfigured(conn, (set(pending) | set(dead)) - set(sources), pending, dead))
        count, first = Outbox(conn).waiting()
        waiting = {"count": count, "next": [{"shop": slug, "order": key, "next_try": _iso(at), "why": why}
                                            for slug, key, at, why in first]}
        gone = _gone(db, [s["last_run"] for s in sources.values()])
        for view in sources.values():
            view["last_run"] = _run_view(view["last_run"], gone)
        return {"state_path": os.path.abspath(db.path), "pending": Outbox(conn).pending_count(), "dead": DeadLetters(conn).count(), "waiting": waiting,
                "held": Outbox(conn).held_count(), "held_by_source": Outbox(conn).held_by_source(), "sources": sources,
                "delivery": _delivery_view(Runs(conn).last_delivery())}


def _unconfigured(conn: Any, names: set[str], pending: dict[str, int], dead: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Sources no longer in the config (renamed, removed) whose rows or letters the file still holds: without
    them the top counts named more than the table showed. Nothing reads them any more (`dlq retry` says so)."""
    return {name: {"type": "", "shop_slug": "", "enabled": False, "configured": False, "cursors": Cursors(conn).all(name),
                   "pending": pending.get(name, 0), "dead": dead.get(name, 0), "last_run": Runs(conn).last(name)}
            for name in sorted(names)}


def _enabled(raw: dict[str, Any]) -> bool:
    """As the source's ``Config`` reads it (``"false"`` from the environment is false)."""
    try:
        return TypeAdapter(bool).validate_python(raw.get("enabled", True))
    except ValidationError:
        return True


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds") if t else None


def _gone(db: StateDB, runs: list[dict[str, Any] | None]) -> set[int]:
    """The runs recorded as running whose process is gone (killed, or an older release stopped before the
    upgrade): nobody holds the state lock, which every run takes before it starts and keeps to its end. Read
    again after the probe, so that a run that ended meanwhile shows how it ended."""
    running = [run["id"] for run in runs if run and run["status"] == "running"]
    if not running or lock_holder(db.path, here="this process") is not None:
        return set()
    marks = ",".join("?" * len(running))
    with db.read() as conn:
        rows = conn.exec_driver_sql(f"SELECT id FROM run WHERE status = 'running' AND id IN ({marks})", tuple(running))
        return {int(run_id) for (run_id,) in rows}


def _failure(run: dict[str, Any] | None) -> dict[str, Any] | None:
    """The newest finished run if it failed: while the next one runs (a slow timeout) its reason still shows."""
    return {"finished_at": _iso(run["finished_at"]), "error": run["error"]} if run else None


def _run_view(run: dict[str, Any] | None, gone: set[int]) -> dict[str, Any] | None:
    """``running`` says whether a process is on the run; one recorded as running that none is on shows as
    ``interrupted``: what it committed is kept, and the next run reads on (a full sync from the start)."""
    if not run:
        return None
    interrupted = run["id"] in gone
    return {
        "kind": run["kind"], "status": "interrupted" if interrupted else run["status"],
        "running": run["status"] == "running" and not interrupted, "started_at": _iso(run["started_at"]),
        "finished_at": _iso(run["finished_at"]), "read": run["read"], "enqueued": run["enqueued"],
        "unchanged": run["unchanged"], "rejected": run["rejected"], "error": run["error"],
    }


def keep_delivery(
    db: StateDB, started: float, now: float, result: DeliveryResult | None, error: str | None,
    left_out: Collection[str] = (),
) -> None:
    """Keep a drain's outcome as a ``deliver`` run (``Runs.delivered``), masked: `status` runs in a shell
    without the API key, which could not mask it there. A drain that sent nothing and did not fail keeps
    nothing: the daemon drains every 30 s, and an idle one says nothing about Karla. One that left out
    shops Karla refused (``left_out``, the daemon's hour between tries) failed with that refusal while
    their orders wait: an ``ok`` for the other shops' orders hid it, and a fixed key's drain is ``ok``."""
    if error is None and not (result and (result.requests or result.dead)):
        return
    counts = {"delivered": result.orders + result.trackings, "dead": result.dead} if result else {}
    try:
        with db.transaction() as conn:
            if error is None and left_out and (note := Outbox(conn).noted(left_out, SHOP_REFUSED)):
                error = note.removeprefix(f"{SHOP_REFUSED}: ")  # as the refusing drain said it: one failure, not two
            Runs(conn).delivered(started, now, counts, redact(error) if error is not None else None)
    except DatabaseError as exc:  # what was delivered is recorded; only `status` misses this drain
        # a full disk is said once where it stops the work (``connector.job_errors``), not again per drain
        level = logging.DEBUG if is_state_trouble(exc) else logging.WARNING
        log.log(level, "could not keep the last delivery's outcome for `status` in %s: %s", db.path, exc)


def _delivery_view(run: dict[str, Any] | None) -> dict[str, Any] | None:
    """The last drain that sent something or failed; a failure repeated since ``started_at`` is one run."""
    if not run:
        return None
    return {"status": run["status"], "started_at": _iso(run["started_at"]), "finished_at": _iso(run["finished_at"]),
            "delivered": run["delivered"], "dead": run["dead"], "error": run["error"]}
