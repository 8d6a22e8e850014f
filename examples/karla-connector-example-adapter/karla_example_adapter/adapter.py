"""The whole adapter: config, check, streams, read. Mapping uses karla-connector's models and carrier table."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from adapters.base import AdapterContext, Page, Record, Rejected, SourceConfig, StreamSpec
from connector.errors import ConfigError
from connector.karla import OrderPlacement, Tracking, carrier_fields
from connector.karla.models import explain

__all__ = ["JsonlAdapter", "JsonlConfig"]


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
        return [StreamSpec("orders", is_sorted=True, description="orders ordered by 'updated'")]

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        """Cursor = (updated, number) of the last record: inclusive bound plus key tie-break loses nothing."""
        after = tuple(json.loads(cursor)) if cursor else None
        rows = sorted(self._rows(), key=lambda r: (r[1].get("updated", ""), str(r[1].get("number", ""))))
        page = Page()
        for line, row in rows:
            mark = (row.get("updated", ""), str(row.get("number", "")))
            if after is not None and mark <= after:
                continue
            self._add(page, line, row, mark)
            if len(page.records) + len(page.rejected) >= self.config.page_size:
                yield page
                page = Page()
        if page.records or page.rejected:
            yield page

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        with self.config.path.open(encoding="utf-8") as f:
            for number, text in enumerate(f, start=1):
                if text.strip():
                    yield number, json.loads(text)

    def _add(self, page: Page, line: int, row: dict[str, Any], mark: tuple[str, str]) -> None:
        location = f"{self.config.path.name}:{line}"
        try:
            record = Record(key=mark[1], order=_order(row), trackings=_parcels(row), cursor=json.dumps(mark), location=location)
        except ValidationError as exc:
            page.rejected.append(Rejected(location=location, reason=f"order {mark[1]}: {explain(exc)}", key=mark[1], raw=row))
        except (KeyError, TypeError) as exc:
            page.rejected.append(Rejected(location=location, reason=f"order {mark[1]}: missing or wrong field {exc}", key=mark[1], raw=row))
        else:
            page.records.append(record)
        page.cursor = json.dumps(mark)


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
