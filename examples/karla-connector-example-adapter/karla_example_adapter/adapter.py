"""The whole adapter: config, check, streams, read. Mapping uses karla-connector's models and carrier table."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from datetime import timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from adapters.base import AdapterContext, FileMark, Page, Record, Rejected, SourceConfig, StreamSpec
from adapters.normalise import parse_datetime
from connector.errors import ConfigError
from connector.karla import OrderPlacement, Tracking, carrier_fields
from connector.karla.models import explain

__all__ = ["JsonlAdapter", "JsonlConfig"]

Position = tuple[str, str]  # (updated as UTC text that sorts like time, order number)


class JsonlConfig(SourceConfig):
    type: Literal["jsonl"] = "jsonl"
    path: Path = Field(description="The JSON Lines file to read")
    page_size: int = Field(100, ge=1, description="Records per page (one transaction each)")


class JsonlAdapter:
    type = "jsonl"
    Config = JsonlConfig

    def __init__(self, name: str, config: JsonlConfig, context: AdapterContext) -> None:
        self.name, self.config, self.context = name, config, context

    def check(self) -> list[str]:
        if not self.config.path.is_file():
            raise ConfigError(f"sources.{self.name}.path: {self.config.path} is not a file")
        with self.config.path.open(encoding="utf-8") as f:
            return [f"{sum(1 for _ in f)} lines in {self.config.path.name}"]

    def streams(self) -> Sequence[StreamSpec]:
        return [StreamSpec("orders", is_sorted=True, description="orders ordered by 'updated', then 'number'")]

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        """Orders in ``(updated, number)`` order, starting just after the cursor.

        The cursor is ``{"after": [updated, number], "reported": [...]}``. ``after`` is the position of the
        last row emitted; a row is emitted when its position is strictly greater. That is exclusive on the
        whole tuple: a row with the same ``updated`` but a later number is still read (skipping on
        ``updated`` alone would lose it when a page ends inside a timestamp). A row edited later must get
        a newer ``updated`` to be read again; the nightly full sync (cursor None) reads everything.

        Lines that have no place in that order (not JSON, no valid ``updated`` or ``number``) become dead
        letters naming ``file:line`` and the reason; ``reported`` lists their fingerprints, so each is
        reported once, not on every poll. A fixed line is read like any other.

        The last page reports the file read to its end (``done_files``, a ``FileMark`` named as the letters'
        locations name it): a letter naming no order (a line that is not JSON) clears when `dlq retry` reads
        the file without it, which it can only tell from that mark.
        """
        after, reported = self._parse_cursor(cursor)
        rows, broken, mark = self._scan()
        reported &= set(broken)  # forget lines that were fixed or removed: the cursor stays small
        page = Page()
        for fingerprint, rejected in broken.items():
            if fingerprint in reported:
                continue
            reported.add(fingerprint)
            page.rejected.append(rejected)
            page.cursor = _cursor(after, reported)
            if self._full(page):
                yield page
                page = Page()
        for position, line, row in sorted(rows, key=lambda r: r[0]):
            if after is not None and position <= after:
                continue
            after = position
            self._add(page, line, row, position)
            page.cursor = _cursor(after, reported)
            if self._full(page):
                yield page
                page = Page()
        page.done_files = [mark]
        if page.records or page.rejected or cursor is None:  # an idle poll marks nothing; a re-read from the start does
            page.cursor = _cursor(after, reported)
            yield page

    # -- reading ---------------------------------------------------------------------------------------
    def _scan(self) -> tuple[list[tuple[Position, int, dict[str, Any]]], dict[str, Rejected], FileMark]:
        """Rows with their position, the lines that have none (by fingerprint, first occurrence), and the file
        as read (its name as in the letters' ``file:line``)."""
        rows: list[tuple[Position, int, dict[str, Any]]] = []
        broken: dict[str, Rejected] = {}
        name = self.config.path.name
        digest, size = hashlib.sha256(), 0
        with self.config.path.open("rb") as f:
            mtime = os.fstat(f.fileno()).st_mtime
            for line, data in enumerate(f, start=1):
                digest.update(data)
                size += len(data)
                if not data.strip():
                    continue
                row: Any = None
                try:
                    row = json.loads(data.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    problem = f"not UTF-8 text ({exc.reason} at byte {exc.start + 1})"
                except ValueError as exc:
                    problem = f"not valid JSON ({exc})"
                else:
                    problem = _unplaceable(row)
                if problem is None:
                    rows.append(((_instant(row["updated"]), str(row["number"])), line, row))
                    continue
                raw = row if isinstance(row, dict) else {"line": data.strip()[:2000].decode("utf-8", "replace")}
                key = str(raw["number"]) if _has_number(raw) else None
                fingerprint = hashlib.sha256(data.strip()).hexdigest()[:16]
                broken.setdefault(fingerprint, Rejected(location=f"{name}:{line}", reason=problem, key=key, raw=raw))
        return rows, broken, FileMark(path=name, size=size, mtime=mtime, sha256=digest.hexdigest())

    def _parse_cursor(self, cursor: str | None) -> tuple[Position | None, set[str]]:
        if not cursor:
            return None, set()
        try:
            data = json.loads(cursor)
            if isinstance(data, list):  # the earlier format, [updated, number]
                return (_instant(data[0]), str(data[1])), set()
            after = data.get("after")
            return ((_instant(after[0]), str(after[1])) if after else None), set(data.get("reported", []))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            self.context.log.warning("jsonl: unreadable cursor %r; reading %s from the start", cursor[:200], self.config.path.name)
            return None, set()

    def _full(self, page: Page) -> bool:
        return len(page.records) + len(page.rejected) >= self.config.page_size

    def _add(self, page: Page, line: int, row: dict[str, Any], position: Position) -> None:
        location, number = f"{self.config.path.name}:{line}", position[1]
        try:
            record = Record(key=number, order=_order(row), trackings=_parcels(row), cursor=json.dumps(position), location=location)
        except ValidationError as exc:
            page.rejected.append(Rejected(location=location, reason=f"order {number}: {explain(exc)}", key=number, raw=row))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            reason = f"order {number}: missing or wrong field {exc!r}"
            page.rejected.append(Rejected(location=location, reason=reason, key=number, raw=row))
        else:
            page.records.append(record)


def _has_number(row: dict[str, Any]) -> bool:
    number = row.get("number")
    return isinstance(number, (str, int)) and not isinstance(number, bool) and str(number).strip() != ""


def _unplaceable(row: Any) -> str | None:
    """Why a parsed line has no position in the (updated, number) order, or None."""
    if not isinstance(row, dict):
        return f"not a JSON object but {type(row).__name__}"
    where = f"order {row['number']}: " if _has_number(row) else ""
    updated = row.get("updated")
    if not isinstance(updated, str) or not updated.strip():
        return f"{where}'updated' is {'missing' if 'updated' not in row else repr(updated)}; it must be a date-time"
    try:
        _instant(updated)
    except ValueError:
        return f"{where}'updated' {updated!r} is not a date-time"
    if not _has_number(row):
        return f"'number' is {'missing' if 'number' not in row else repr(row['number'])}; it must be the order number"
    return None


def _instant(text: str) -> str:
    """``updated`` as UTC text of fixed width, so text order is time order (``+02:00`` and ``Z`` mix)."""
    when = parse_datetime(text)
    if when is None:
        raise ValueError(f"not a date-time: {text!r}")
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _cursor(after: Position | None, reported: set[str]) -> str:
    return json.dumps({"after": list(after) if after else None, "reported": sorted(reported)})


def _order(row: dict[str, Any]) -> OrderPlacement:
    products = [{"sku": i["sku"], "title": i.get("title"), "quantity": i.get("qty"), "price": i.get("price")} for i in row.get("items", [])]
    return OrderPlacement.model_validate(
        {"order_number": str(row["number"]), "email_id": row.get("email"), "address": {"zip_code": row.get("zip", "")}, "products": products}
    )


def _parcels(row: dict[str, Any]) -> list[Tracking]:
    return [
        Tracking.model_validate({"tracking_number": p["code"], **carrier_fields(p.get("carrier")), "products": [{"sku": s} for s in p.get("skus", [])]})
        for p in row.get("parcels", [])
    ]
