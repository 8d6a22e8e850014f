"""Orders Karla keeps failing on, told apart from an outage, so that one order cannot hold back the rest.

A batch that runs out of retries on a 500 looks like Karla being down, and usually is. But when one
order's data trips a bug at Karla, every drain would end at that batch and no order behind it would
ever go. So the orders of such a batch become suspects (the outbox notes it in ``last_error``): later
drains send each alone, after every other batch. A suspect that fails alone while Karla is up is
postponed like an order Karla does not know yet; if Karla is not up, the drain ends as an outage.
A changed version of the order is queued afresh (``Outbox.enqueue`` clears the note): a normal order.

The note quotes Karla's answer masked (``redact``): ``status`` shows it from a shell that knows no secret.

``failing_order_max_age_hours`` counts from the order's first failure alone (``ALONE`` notes it, and
``first_enqueued_at`` restarts then), not from when it was queued: orders pile up through an outage or a
stopped daemon, and one that waited 30 hours must not become a letter on its first 500.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from connector.errors import Aborted, Unavailable
from connector.items import Item
from connector.logs import redact
from state import Outbox, PendingRow, StateDB

__all__ = ["backoff", "hours_failing", "is_suspect", "mark", "postpone", "server_failed"]

MARK = "Karla failed on this batch"  # how a suspect's last_error starts
ALONE = f"{MARK}, then on this order alone"  # ... once it failed alone: its wait counts from then


def backoff(rows: Sequence[PendingRow]) -> float:
    """Seconds until the next try of rows that failed before: 30 s, doubling per attempt, at most an hour."""
    return min(3600.0, 30.0 * 2 ** max(r.attempts for r in rows))


def is_suspect(item: Item) -> bool:
    return any((r.error or "").startswith(MARK) for r in item.rows)


def server_failed(exc: Unavailable | None) -> bool:
    """Whether Karla's application itself failed on the request: a 500. A 502, 503 or 504 comes from a
    gateway or an outage, whatever the data (as do timeouts, refused connections, a 429 or a stop)."""
    status = getattr(exc.__cause__, "status", None) if exc is not None and not isinstance(exc, Aborted) else None
    return status == 500


def mark(db: StateDB, items: Iterable[Item], exc: Unavailable) -> None:
    """The orders of the batch that gave up become suspects (due at once, but sent alone and last)."""
    rows = [r for item in items for r in item.rows]
    if rows:
        with db.transaction() as conn:
            Outbox(conn).suspect(rows, f"{MARK}: {redact(str(exc))}")


def hours_failing(item: Item, now: float) -> float:
    """How long Karla has kept failing on the order alone: since the first failure alone of its rows that
    failed alone before (0 if none did: it just became a suspect, or a changed version was queued since)."""
    since = [r.first_enqueued_at for r in item.rows if (r.error or "").startswith(ALONE)]
    return (now - min(since)) / 3600 if since else 0.0


def postpone(db: StateDB, item: Item, exc: Unavailable, now: float) -> float:
    """A suspect that failed alone while Karla is up waits; returns the pause in seconds. Rows failing
    alone for the first time start their wait now (``hours_failing``), however long they were queued."""
    pause = backoff(item.rows)
    first = [r for r in item.rows if not (r.error or "").startswith(ALONE)]
    with db.transaction() as conn:
        if first:
            Outbox(conn).restart_wait(first, now)
        Outbox(conn).postpone(item.rows, now + pause, f"{ALONE}: {redact(str(exc))}")
    return pause
