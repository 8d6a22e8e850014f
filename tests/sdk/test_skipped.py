"""``Page.skipped`` (contract 1.3): keys of orders an adapter read and leaves out on purpose. The engine clears
the source's own letters for them; the kit passes an adapter that fills it; adapters that do not are unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from adapters.base import AdapterContext, Page, Rejected
from adapters.testing import AdapterContract
from connector.engine import SourceRuntime, sync_source
from state import DeadLetters
from state.db import open_state
from tests.sdk.test_contract_kit import ORDERS, KitConfig, _Base, record

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


class Cancelling(_Base):
    """Every fourth order is bad (a dead letter) until it is cancelled: then it is left out, its key on the page
    as the ``int`` a REST API returns (the engine compares keys as text)."""

    cancelled = False

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        rows = [o for o in ORDERS if o["id"] > (int(cursor) if cursor else 0)]
        for start in range(0, len(rows), self.page_size):
            chunk = rows[start : start + self.page_size]
            bad = [o for o in chunk if not o["id"] % 4]
            page = Page(records=[record(o) for o in chunk if o["id"] % 4], cursor=str(chunk[-1]["id"]))
            if self.cancelled:
                page.skipped = [o["id"] for o in bad]  # type: ignore[misc]
            else:
                page.rejected = [Rejected(location=f"memory:{o['id']}", reason="no zip code", key=str(o["id"])) for o in bad]
            yield page


class CancelledLater(Cancelling):
    cancelled = True


class TestAnAdapterThatSkipsPassesTheKit(AdapterContract):
    def make_adapter(self, context: AdapterContext) -> CancelledLater:
        return CancelledLater("t", KitConfig(), context)


def test_a_page_skips_nothing_by_default() -> None:
    assert Page().skipped == [] and Page().skipped is not Page().skipped


def test_skipped_keys_clear_the_sources_letters_and_no_other(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    first = sync_source(db, SourceRuntime("erp", Cancelling, KitConfig(), "shop"), clock=lambda: NOW)
    assert first.new_letters == 3
    with db.transaction() as conn:  # another source's letter for the same key, and Karla's for one of them
        DeadLetters(conn).add([
            {"created_at": 0.0, "stage": "source", "source": "other", "stream": "orders", "order_key": "4", "reason": "bad"},
            {"created_at": 0.0, "stage": "karla", "source": "erp", "stream": "orders", "slug": "shop", "order_key": "8",
             "reason": "422 zip_code_invalid"},
        ])
    later = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    sync_source(db, SourceRuntime("erp", CancelledLater, KitConfig(), "shop"), clock=lambda: later, full=True)
    with db.read() as conn:
        assert sorted((r.source, r.stage, r.order_key) for r in DeadLetters(conn).list()) == [
            ("erp", "karla", "8"), ("other", "source", "4")]
    db.close()
