"""What ``karla-connector status`` shows: the state file's view of each configured source.

It reads the raw ``[sources.NAME]`` tables rather than validated source configs: an operator runs it in a
shell beside the service, where the secrets a source's ``Config`` requires (``LoadCredential=`` files
only the service can read) are missing, and showing cursors and counts needs none of them.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from pydantic import TypeAdapter, ValidationError

from connector.settings import Settings
from state import Cursors, DeadLetters, Outbox, Runs, StateDB

__all__ = ["state_status"]


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
                "last_run": _run_view(Runs(conn).last(name)),
            }
            for name, raw in settings.sources.items()
        }
        count, first = Outbox(conn).waiting()
        waiting = {"count": count, "next": [{"shop": slug, "order": key, "next_try": _iso(at), "why": why}
                                            for slug, key, at, why in first]}
        return {"state_path": os.path.abspath(db.path), "pending": Outbox(conn).pending_count(), "dead": DeadLetters(conn).count(), "waiting": waiting,
                "held": Outbox(conn).held_count(), "held_by_source": Outbox(conn).held_by_source(), "sources": sources}


def _enabled(raw: dict[str, Any]) -> bool:
    """As the source's ``Config`` reads it (``"false"`` from the environment is false)."""
    try:
        return TypeAdapter(bool).validate_python(raw.get("enabled", True))
    except ValidationError:
        return True


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds") if t else None


def _run_view(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if not run:
        return None
    return {
        "kind": run["kind"], "status": run["status"], "started_at": _iso(run["started_at"]),
        "finished_at": _iso(run["finished_at"]), "read": run["read"], "enqueued": run["enqueued"],
        "unchanged": run["unchanged"], "rejected": run["rejected"], "error": run["error"],
    }
