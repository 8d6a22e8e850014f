"""The dead letters of one page, written in the page's transaction (``connector.pages.commit_page``): its
rejections (but those of orders it skips), older letters a clean record or a skipped order clears, and bad rows a later file made obsolete.

Apart from the page's records (``connector.pages``) because the order matters: the page's rejections are
stored first (a letter read again is refreshed in place: the same id, not new), and only then do the page's
records clear older letters, which the page's own, dated ``now``, are not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.base import Page, Record, Rejected
from connector.logs import redact, redact_data
from state import DeadLetters, Files, Outbox, origin
from state.parts import VERSION_SEP, older

if TYPE_CHECKING:
    from connector.engine import SourceRuntime

__all__ = ["PageLetters", "skipped_keys", "warn_letters", "write_letters"]

_NAMED = 3  # dead letters named per page in the log

log = logging.getLogger("connector.sync")


@dataclass(slots=True)
class PageLetters:
    standing: list[Rejected]  # the page's rejections stored as letters (new or refreshed)
    fresh: list[Rejected]  # of those, the ones not already letters
    obsolete: list[tuple[Rejected, str]]  # bad rows a later file superseded, each with that file's name
    dropped: int  # earlier letters of those obsolete rows cleared


def write_letters(conn: Any, rt: SourceRuntime, stream: str, page: Page, now: float, resolve: bool) -> PageLetters:
    """Store the page's letters; with ``resolve`` (the source has letters), clear the older ones the page's
    clean records and skipped orders settle (``DeadLetters.resolve``, ``drop_skipped``: letters dated before
    ``now`` only, so not the ones just written or refreshed)."""
    letters = DeadLetters(conn)
    skipped = skipped_keys(page)
    rejected = _unsettled(page, skipped)
    obsolete = _obsolete(conn, rt, stream, rejected)
    dropped = letters.drop_from_files(rt.name, stream, [(str(r.key), str(origin(r.location))) for r, _ in obsolete])
    gone = {id(r) for r, _ in obsolete}
    standing = [r for r in rejected if id(r) not in gone]
    fresh = [standing[i] for i in letters.add_new(_dead_rows(standing, rt.name, stream, rt.slug, now))]
    if resolve:
        letters.resolve(rt.name, stream, [_vouches(r) for r in page.records], before=now)
        letters.drop_skipped(rt.name, stream, skipped, before=now)
    return PageLetters(standing, fresh, obsolete, dropped)


def skipped_keys(page: Page) -> set[str]:
    """``Page.skipped`` as ``Rejected.key`` stores keys: text, without surrounding blanks (a fixed-width export's
    ``"1001  "`` must find the letter its padded rejection left as ``1001``)."""
    return {key for value in page.skipped if value is not None and (key := str(value).strip())}


def _unsettled(page: Page, skipped: set[str]) -> list[Rejected]:
    """The page's rejections but those of orders it skips (``Page.skipped``: read and left out on purpose, so
    no letter says they were not sent). A clean record of the same order on the same page does not settle
    one: which of the two was read later is not known (a file's parcel rows are siblings, an export may be
    sorted by time, not by line), so the letter stands until a later page reads the order cleanly."""
    if not page.rejected or not skipped:
        return page.rejected
    return [r for r in page.rejected if r.key is None or r.key not in skipped]


def _dead_rows(rejected: list[Rejected], source: str, stream: str, slug: str, now: float) -> list[dict[str, Any]]:
    return [
        {
            "created_at": now, "stage": "source", "source": source, "stream": stream, "slug": slug,
            "order_key": r.key, "location": r.location, "reason": redact(r.reason),  # `dlq list` shows it
            "payload": redact_data(dict(r.raw)) if r.raw is not None else None,  # an adapter's raw row may hold a secret
        }
        for r in rejected
    ]


def _obsolete(conn: Any, rt: SourceRuntime, stream: str, rejected: list[Rejected]) -> list[tuple[Rejected, str]]:
    """The bad rows of orders that a later file already brought (its version delivered or waiting), each with
    that file's name: a full sync re-reading a file kept in place for its letter, after the newer file was
    archived or deleted. Their letter would say the order was not sent, and fixing the old row would send old
    data. Only where the source versions records by file name: the newer version must name a file it read."""
    keyed = [r for r in rejected if r.key is not None and origin(r.location)]
    known = Outbox(conn).order_versions(rt.slug, {str(r.key) for r in keyed}) if keyed else {}
    read: dict[str, bool] = {}  # file name -> read to its end by this source (asked once per page)
    found = []
    for r in keyed:
        mine = VERSION_SEP.join((rt.name, stream, str(origin(r.location))))
        newer = sorted(v.rpartition(VERSION_SEP)[2] for v in known.get(str(r.key), ()) if older(mine, v))
        for name in set(newer) - read.keys():
            read[name] = Files(conn).has(rt.name, name)
        named = [name for name in newer if read[name]]
        if named:
            found.append((r, named[-1]))
    return found


def tell_obsolete(source: str, obsolete: list[tuple[Rejected, str]], dropped: int) -> None:
    """INFO, not a warning: nothing is left to fix, and a full sync says it again each night of a kept file."""
    named = "; ".join(f"{r.location} (order {r.key}, superseded by {newer})" for r, newer in obsolete[:_NAMED])
    more = f" (and {len(obsolete) - _NAMED} more)" if len(obsolete) > _NAMED else ""
    cleared = f"; {dropped} earlier dead letter(s) of them cleared" if dropped else ""
    log.info("source %s: %d bad row(s) of an older file superseded by a later file, whose version of the order Karla "
             "has or is about to get: no dead letter, nothing to fix: %s%s%s", source, len(obsolete), named, more,
             cleared, extra={"source": source})


def warn_letters(source: str, new: list[Rejected], standing: int, dry_run: bool = False) -> None:
    """Bad input is the merchant's most common problem: say where, at WARNING (alerts, a quiet log level),
    not only in `dlq list`. The first few new letters of a page are named (a whole bad file is one letter
    anyway); the page's earlier letters a re-read only refreshed are counted, not named, or a file kept for
    its old letters would hide the new bad row behind them."""
    named = "; ".join(f"{r.location}: {redact(r.reason)}" for r in new[:_NAMED])
    more = f" (and {len(new) - _NAMED} more)" if len(new) > _NAMED else ""
    if dry_run:  # nothing is stored: `dlq list` would not show them
        log.warning("source %s (dry run): %d record(s) would be dead letters: %s%s; nothing was stored", source, len(new),
                    named, more, extra={"source": source})
        return
    still = f"; {standing} earlier dead letter(s) read again still stand" if standing else ""
    log.warning("source %s: %d new dead letter(s): %s%s%s; `karla-connector dlq list` shows them", source, len(new), named,
                more, still, extra={"source": source})


def _vouches(record: Record) -> tuple[str, str | None, frozenset[str] | None, bool]:
    """What a record read cleanly clears letters for: its whole order, or only the parcels it carries; and
    whether its version is its file's name (then an earlier-named file's letter of the order is older)."""
    parcels = None if record.order is not None else frozenset(t.tracking_number for t in record.trackings)
    where = origin(record.location)
    return record.key, where, parcels, record.version is not None and record.version == where
