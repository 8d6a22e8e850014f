"""Tables of the state file. Times are UNIX seconds (float, UTC) so comparisons stay cheap and exact.

``part`` names one deliverable piece of an order: ``order`` (the order object) or ``tracking:<number>``.
Change detection and the outbox both work per part, which is what lets an edited order be re-sent
without replaying the trackings Karla already has.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["Cursor", "DeadLetter", "Delivered", "Heartbeat", "KarlaTarget", "OnWire", "OutboxItem", "Run", "SeenFile"]


class Cursor(SQLModel, table=True):
    """Where a source's stream resumes; moved only together with the outbox rows of the same page."""

    __tablename__ = "cursor"
    source: str = Field(primary_key=True)
    stream: str = Field(primary_key=True)
    value: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: float = 0.0


class OutboxItem(SQLModel, table=True):
    """A part waiting for Karla. A newer version of the same part replaces the pending one."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("slug", "order_key", "part", name="uq_outbox_part"),)
    id: int | None = Field(default=None, primary_key=True)
    slug: str
    order_key: str
    id_type: str = "order_number"
    part: str
    payload: str = Field(sa_column=Column(Text, nullable=False))
    hash: str
    source: str
    stream: str
    location: str | None = None
    first_enqueued_at: float
    enqueued_at: float
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    held: bool = False  # queued by a full sync still reading (or cut short): not sent until one finishes
    version: str | None = None  # source, stream and Record.version: a re-read never queues an older one


class Delivered(SQLModel, table=True):
    """Hash of what Karla acknowledged per part: an unchanged part is never sent again."""

    __tablename__ = "delivered"
    __table_args__ = {"sqlite_with_rowid": False}  # one B-tree: the key is the row (migration 3)
    slug: str = Field(primary_key=True)
    order_key: str = Field(primary_key=True)
    part: str = Field(primary_key=True)
    hash: str
    delivered_at: float
    version: str | None = None  # of what Karla acknowledged (``OutboxItem.version``)


class DeadLetter(SQLModel, table=True):
    """A record that could not be used or that Karla refused, with the reason a merchant can act on."""

    __tablename__ = "dead_letter"
    # AUTOINCREMENT (migration 12): an id is never given again, so an id from an earlier `dlq list` never
    # names a newer letter once the highest one was dropped or cleared
    __table_args__ = (Index("ix_dead_letter_source", "source"), Index("ix_dead_letter_order", "stage", "slug", "order_key"),
                      {"sqlite_autoincrement": True})
    id: int | None = Field(default=None, primary_key=True)
    created_at: float
    stage: str  # "source" (bad input) or "karla" (rejected by Karla)
    source: str
    stream: str | None = None
    slug: str | None = None
    order_key: str | None = None
    id_type: str | None = None
    location: str | None = None
    reason: str = Field(sa_column=Column(Text, nullable=False))
    details: str | None = Field(default=None, sa_column=Column(Text))
    payload: str | None = Field(default=None, sa_column=Column(Text))
    versions: str | None = Field(default=None, sa_column=Column(Text))  # a Karla letter's parts' versions (JSON)


class SeenFile(SQLModel, table=True):
    """A source file read to its end, by fingerprint: a changed file is a new fingerprint."""

    __tablename__ = "seen_file"
    source: str = Field(primary_key=True)
    path: str = Field(primary_key=True)
    size: int = Field(primary_key=True)
    mtime: float = Field(primary_key=True)
    sha256: str = Field(primary_key=True)
    rejected: int = 0
    seen_at: float


class Run(SQLModel, table=True):
    """One sync or delivery pass with its counts, for ``status`` and the health endpoint."""

    __tablename__ = "run"
    __table_args__ = (
        Index("ix_run_source", "source", "id"),
        Index("ix_run_ok", "source", "status", "finished_at"),  # Runs.last_ok (migration 10)
        Index("ix_run_kind", "source", "kind", "id"),  # each kind's latest run, which Runs.prune keeps
    )
    id: int | None = Field(default=None, primary_key=True)
    source: str
    kind: str  # "sync", "full", "deliver"
    started_at: float
    finished_at: float | None = None
    status: str = "running"  # running, ok, failed
    read: int = 0
    enqueued: int = 0
    unchanged: int = 0
    rejected: int = 0
    delivered: int = 0
    dead: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))


class Heartbeat(SQLModel, table=True):
    """One row the daemon's readiness check rewrites: proof that the state file itself takes a commit
    (a full disk or a read-only mount fails here before it fails a page of orders)."""

    __tablename__ = "heartbeat"
    id: int = Field(default=1, primary_key=True)
    at: float = 0.0


class OnWire(SQLModel, table=True):
    """The parts of a request on its way to Karla, written before it is sent and removed once its answer is
    recorded. A row left behind names a request whose answer a killed process never heard: Karla may hold
    what it sent, so what Karla acknowledged before for those parts is no longer to be trusted."""

    __tablename__ = "on_wire"
    id: int | None = Field(default=None, primary_key=True)
    parts: str = Field(sa_column=Column(Text, nullable=False))  # JSON: [[slug, order_key, part], ...]


class KarlaTarget(SQLModel, table=True):
    """The Karla whose acknowledgements ``delivered`` holds (migration 13): its base URL (``state.karla_target``
    normalises it), API user, and whether it was the embedded sandbox (its answers bear a header saying so). A
    file the sandbox filled would otherwise pass for the real Karla's: every order it acknowledged looks delivered."""

    __tablename__ = "karla_target"
    id: int = Field(default=1, primary_key=True)  # one row
    base_url: str
    username: str
    sandbox: bool = False  # the sandbox acknowledged deliveries in this file: only DELETE FROM karla_target clears it
    since: float  # when deliveries first went to this Karla (a change of Karla starts it again)
