"""The adapter contract: what a source must provide, and nothing more.

An adapter reads its source and maps what it finds onto Karla's request shapes. It never opens the state
database and never calls Karla: the engine owns cursors, change detection, the outbox and delivery. That
split is what lets a third party write an adapter in an afternoon without being able to lose an order.

Lifecycle: the engine builds ``Adapter(name, config, context)``, calls ``check()`` for ``karla-connector
check``, and for a sync calls ``read(stream, cursor)`` for each of ``streams()``. Every ``Page`` it yields
is committed atomically: the page's records go to the outbox, its rejections to the dead-letter store, its
finished files are marked seen and ``page.cursor`` becomes the stored cursor (not during a full sync), in
one transaction. If the process dies, the next run calls ``read`` again with the last committed cursor,
so a page must be reproducible from the cursor that preceded it, rejections included (at-least-once;
duplicates are harmless because unchanged records are never sent twice).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, ClassVar, Protocol, get_args, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connector.karla.models import IdType, OrderPlacement, Tracking

__all__ = [
    "CONTRACT_VERSION",
    "Adapter",
    "AdapterContext",
    "FileMark",
    "Page",
    "Record",
    "Rejected",
    "SourceConfig",
    "StreamSpec",
]

# Major.minor. A change that breaks existing adapters bumps the major (see docs/adapters.md).
CONTRACT_VERSION = (1, 3)


class SourceConfig(BaseModel):
    """Keys every source has; an adapter's ``Config`` subclasses this and adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(description="Selects this adapter (its entry-point name)")
    shop_slug: str | None = Field(default=None, description="Karla shop for this source (default: [karla].shop_slug)")
    enabled: bool = Field(default=True, description="A disabled source is skipped by sync and run")
    poll_interval: float = Field(default=300.0, gt=0, description="Seconds between incremental syncs in `run`")
    full_sync_cron: str | None = Field(default=None, description='Nightly full sync, crontab syntax, e.g. "0 2 * * *"')
    full_sync_since: date | None = Field(default=None, description="A full sync re-reads everything since this date; a shop source's first poll (no cursor yet) reads from there too")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """An adapter's ``type: Literal["erp"] = "erp"`` drops the base field's description, and `karla-connector
        adapters` printed an empty ``type`` line for every plugin: the base's is kept where it gave none."""
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields.get("type")
        if field is not None and not field.description:
            field.description = SourceConfig.model_fields["type"].description

    @field_validator("full_sync_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        """Parsed exactly as the daemon will schedule it, so a typo stops start-up instead of the nightly job."""
        if value is not None:
            from connector.schedule import cron_trigger  # lazily: APScheduler only when a cron is configured

            cron_trigger(value)  # ValueError names what is wrong
        return value

    def shop_slugs(self) -> set[str]:
        """The Karla shops this source's records name beyond the source's own (``Record.shop_slug``): an
        adapter that routes records to other shops returns them here. A shop Karla refuses that no source
        names any more (a typo since corrected) has its waiting orders dead-lettered instead of waiting."""
        return {self.shop_slug} if self.shop_slug else set()


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One kind of data a source offers. ``is_sorted`` is information for people reading ``adapters``
    output (the source yields in cursor order); the engine does not rely on it, nor on ``Record.cursor``:
    only a page's ``cursor`` is stored.

    ``complete_trackings`` (since 1.3): a record of this stream that carries its order lists every live
    parcel of it (an API's present state, as Shopify's and Shopware's). A parcel Karla has that such a
    record no longer lists was withdrawn at the source (a cancelled fulfilment, a corrected number): the
    engine drops it if it still waits and warns about it once if Karla has it. Leave it False where
    parcels come apart from their order (CSV files)."""

    name: str
    is_sorted: bool = False
    description: str = ""
    complete_trackings: bool = False


@dataclass(frozen=True, slots=True)
class Record:
    """One order's data as Karla should see it.

    ``order`` is the full order (None when the source only knows trackings), ``trackings`` the parcels the
    source knows for it. ``key`` is the order reference sent as ``id`` (with ``id_type``); with an ``order``
    it must be that order's value for ``id_type`` (``ValueError`` otherwise). ``location`` names where it
    came from (``orders_001.csv:12``, ``gid://shopify/Order/1``) for error messages.

    ``version`` (optional) says how this read of the order sorts against another read of it from the same
    stream: a CSV file's name, as files are read in name order. A re-read (a full sync, ``dlq retry``)
    never queues a version that sorts before the one Karla has or that waits to go. Without it a full
    sync's changed versions wait until it has read everything (they may be older than Karla's).
    """

    key: str
    order: OrderPlacement | None = None
    trackings: Sequence[Tracking] = ()
    id_type: IdType = "order_number"
    cursor: str | None = None
    location: str | None = None
    shop_slug: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        # Checked here, where an adapter author sees it, not later as a request Karla cannot parse.
        object.__setattr__(self, "key", _key(self.key, "Record.key"))
        if type(self.trackings) not in (tuple, list):  # the common case costs one test (100k orders a sync)
            object.__setattr__(self, "trackings", _trackings(self))
        if self.id_type not in _ID_TYPES:
            raise ValueError(f"Record {self.key!r}: id_type {self.id_type!r} is not one of {', '.join(_ID_TYPES)} (use keyword arguments)")
        if self.order is not None:
            if not isinstance(self.order, OrderPlacement):  # a dict would fail deep in the engine, naming no record
                raise TypeError(f"Record {self.key!r} ({self.location or 'no location'}): order must be a "
                                f"connector.karla.OrderPlacement, not {type(self.order).__name__} "
                                "(build it with OrderPlacement.model_validate(...))")
            _check_reference(self.key, self.id_type, self.order)


_ID_TYPES = get_args(IdType)


def _trackings(record: Record) -> tuple[Tracking, ...]:
    """Any other iterable made a tuple: a generator would be used up by the first of the engine's several
    reads of it (the parcels queued, then the same parcels counted withdrawn). A single value is a mistake
    that iterates oddly (a model yields its fields), so it is refused here, naming the record."""
    value = record.trackings
    if isinstance(value, (Tracking, str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise TypeError(f"Record {record.key!r} ({record.location or 'no location'}): trackings must be a list of "
                        f"connector.karla.Tracking, not {type(value).__name__} (wrap a single one: [tracking])")
    return tuple(value)


def _check_reference(key: str, id_type: str, order: OrderPlacement) -> None:
    """Karla files the order under the order's own values (karla-docs 002: the id and id_type must match
    the order given). A key naming something else goes through once, with its order, and every later
    parcel-only request for it is ``order_not_found``: the parcels wait and become dead letters."""
    if id_type == "uuid":
        return  # Karla assigns the uuid; the order carries none to compare with
    value = (order.external_id or order.order_number) if id_type == "external_id" else getattr(order, id_type)
    if key == value:
        return
    if value is None:
        raise ValueError(f"Record {key!r}: id_type {id_type!r} but the order has no {id_type}; Karla could not find "
                         f"the order by it for its later parcels. Set the order's {id_type} to {key!r}")
    default = " (external_id defaults to the order_number)" if id_type == "external_id" else ""
    raise ValueError(
        f"Record {key!r}: id_type {id_type!r} but the order's {id_type} is {value!r}{default}; Karla would file "
        f"the order under {value!r} and refuse its later parcels sent as {key!r}. Use key={value!r}, or set the "
        f"order's {id_type} to {key!r}"
    )


def _key(value: Any, rule: str) -> Any:
    """An order key as text without surrounding blanks: the state database stores keys as text, so an
    ``int`` id (what REST APIs return) would never equal its stored self and every read would count as
    changed."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"{rule} must be a str (or int), not {type(value).__name__}: {value!r}")
    value = value.strip()  # as the order's own fields are stripped: " 1001" would not find Karla's "1001"
    if not value:  # Karla would refuse it as a request without an id, naming no order
        raise ValueError(f"{rule} is empty")
    return value


@dataclass(frozen=True, slots=True)
class Rejected:
    """A source record that cannot be used; it becomes a dead letter naming ``location`` and ``reason``."""

    location: str
    reason: str
    key: str | None = None
    raw: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        # Compared with Record keys when a clean read clears the letter. Any value is made text: a rejection
        # is often built from a raw row in an ``except`` branch, where refusing it would stop the source.
        if self.key is not None:
            object.__setattr__(self, "key", str(self.key).strip() or None)  # "" names no order, as None


@dataclass(frozen=True, slots=True)
class FileMark:
    """A file read to its end. The engine remembers it so it is not read again unless it changes."""

    path: str
    size: int
    mtime: float
    sha256: str
    rejected: int = 0


@dataclass(slots=True)
class Page:
    """A unit of progress: records, rejections and finished files, committed together with ``cursor`` (the
    checkpoint to resume from). A rejection belongs on the page whose cursor passes its row: held back for
    a later page, it is lost when the run stops in between.

    ``skipped`` (since 1.3): keys of orders read and left out on purpose as they now stand (cancelled, a test
    order, a pickup). The source's own dead letters for them in this stream are cleared: such an order never
    reads cleanly, so its letter would stay for ever. Letters Karla refused stay."""

    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    cursor: str | None = None
    done_files: list[FileMark] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What the engine lends an adapter: a clock, a logger, and read-only knowledge of files seen.

    ``full_sync`` is true for the nightly re-read: incremental shortcuts (cursor, files seen) are ignored
    and change detection downstream keeps unchanged records from being sent. ``dry_run``: read, but
    change nothing at the source (no archiving or deleting of files). ``stop`` is set when the connector
    shuts down: pass it to ``call_with_retries(..., abort=context.stop)`` (``SourceHttp`` takes it as
    ``abort``) so a retry pause ends at once, and wait with ``context.stop.wait(seconds)``, not ``sleep``.
    The engine also stops after each committed page, so a read loop need not check it. ``shop_slug``: the
    Karla shop a record without ``shop_slug`` goes to (the source's shop_slug, else [karla].shop_slug), for an
    adapter that routes records to other shops and must know which of them are one (Shopware's sales_channels).
    """

    source: str
    clock: Callable[[], datetime] = _utcnow
    log: logging.Logger | logging.LoggerAdapter = field(default_factory=lambda: logging.getLogger("adapters"))
    is_seen: Callable[[FileMark], FileMark | None] = lambda mark: None
    was_read: Callable[[str, int, float], FileMark | None] = lambda path, size, mtime: None
    full_sync: bool = False
    dry_run: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    shop_slug: str | None = None


@runtime_checkable
class Adapter(Protocol):
    """The contract. ``type`` is the entry-point alias, ``Config`` the adapter's settings model."""

    type: ClassVar[str]
    Config: ClassVar[type[SourceConfig]]

    def __init__(self, name: str, config: Any, context: AdapterContext) -> None: ...

    def check(self) -> list[str]:
        """Reach the source without changing anything; return facts worth showing the user.

        Raise ``ConfigError`` for bad credentials or settings, ``RetryableError`` when it is unreachable.
        """
        ...

    def streams(self) -> Sequence[StreamSpec]:
        """The streams ``read`` accepts, in the order the engine should read them."""
        ...

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        """Yield pages after ``cursor`` (None: from the beginning or the configured start date)."""
        ...
