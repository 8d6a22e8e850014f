"""The kit's later checks: rejections survive a crash, the registry's view of ``type``, full and dry runs.

Each broken adapter here passed the kit before these checks, yet through the engine it loses dead letters,
is skipped as a broken plugin, skips files in the nightly full sync, or archives files in a dry run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, Literal

import pytest

import connector.registry as registry
from adapters.base import AdapterContext, FileMark, Page, Rejected, SourceConfig
from adapters.csv import CsvAdapter
from adapters.csv.config import CsvConfig
from adapters.testing import AdapterContract
from tests.sdk.test_contract_kit import FILES, ORDERS, FilesSkippedInFullSync, KitConfig, NumericCursor, _Base, kit_for, record


# -- rejections: reported on the page of their row, or lost by a crash ---------------------------------
def _rejected(order: dict[str, Any]) -> Rejected:
    return Rejected(location=f"memory:{order['id']}", reason=f"order {order['id']}: zip code is empty", key=str(order["id"]))


class RejectsOnTheirPage(_Base):
    """Correct: every fourth order is a dead letter, on the page whose cursor passes it."""

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        rows = [o for o in ORDERS if o["id"] > (int(cursor) if cursor else 0)]
        for start in range(0, len(rows), self.page_size):
            chunk = rows[start : start + self.page_size]
            yield Page(records=[record(o) for o in chunk if o["id"] % 4], rejected=[_rejected(o) for o in chunk if not o["id"] % 4],
                       cursor=str(chunk[-1]["id"]))


class RejectsHeldBack(_Base):
    """Wrong: collects the dead letters and reports them on the last page while the cursor moves on."""

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        rows = [o for o in ORDERS if o["id"] > (int(cursor) if cursor else 0)]
        held = [_rejected(o) for o in rows if not o["id"] % 4]
        for start in range(0, len(rows), self.page_size):
            chunk = rows[start : start + self.page_size]
            last = start + self.page_size >= len(rows)
            yield Page(records=[record(o) for o in chunk if o["id"] % 4], rejected=held if last else [], cursor=str(chunk[-1]["id"]))


class TestRejectionsOnTheirPagePassTheKit(AdapterContract):
    def make_adapter(self, context: AdapterContext) -> RejectsOnTheirPage:
        return RejectsOnTheirPage("t", KitConfig(), context)


def test_rejections_held_for_a_later_page_fail_the_kit() -> None:
    with pytest.raises(AssertionError, match=r"crash after page 0 of stream orders loses 1 rejection\(s\) \(orders:memory:4\)"):
        kit_for(RejectsHeldBack).test_resuming_after_a_crash_at_every_page_loses_nothing()


def test_the_engine_would_indeed_lose_those_dead_letters() -> None:
    """Commit page 0 (its cursor passes order 4), die, resume from that cursor: order 4's letter never comes."""
    first = next(RejectsHeldBack("t", KitConfig(), AdapterContext(source="t")).read("orders", None))
    resumed = list(RejectsHeldBack("t", KitConfig(), AdapterContext(source="t")).read("orders", first.cursor))
    assert first.cursor == "5" and "memory:4" not in {r.location for p in [first, *resumed] for r in p.rejected}


# -- type: the kit says what the registry says -----------------------------------------------------------
class RenamedConfig(SourceConfig):
    type: Literal["kit-renamed"] = "kit-renamed"


class HalfRenamed(NumericCursor):
    """Wrong: a rename half done; ``[sources.x] type = "kit"`` is refused by its own Config."""

    Config = RenamedConfig


class AnyType(NumericCursor):
    """Correct, if loose: a plain ``str`` type field accepts the class's type."""

    Config = SourceConfig


def test_a_config_that_refuses_the_class_type_fails_the_kit() -> None:
    with pytest.raises(AssertionError, match=r"Config \(RenamedConfig\) does not accept type = 'kit'"):
        kit_for(HalfRenamed).test_type_and_config_are_declared()


@pytest.mark.parametrize("cls", [NumericCursor, AnyType, HalfRenamed])
def test_the_kit_and_the_registry_agree_on_the_type(cls: type[_Base], monkeypatch: pytest.MonkeyPatch) -> None:
    entry = EntryPoint(name=cls.type, value=f"{__name__}:{cls.__name__}", group=registry.GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: {cls.type: entry})
    try:
        registry.load_adapter(cls.type)
        loads = True
    except registry.AdapterLoadError:
        loads = False
    try:
        kit_for(cls).test_type_and_config_are_declared()
        passes = True
    except AssertionError:
        passes = False
    assert passes == loads == (cls is not HalfRenamed)


# -- full sync: files already seen are read again ----------------------------------------------------
def test_a_file_source_that_skips_seen_files_in_a_full_sync_fails_the_kit() -> None:
    with pytest.raises(AssertionError, match=r"full sync after an incremental run misses 12 record\(s\)"):
        kit_for(FilesSkippedInFullSync).test_a_full_sync_reads_everything_again()


# -- dry run: the source is left as it was ---------------------------------------------------------------
class Inbox(_Base):
    """Files in a shared in-memory folder; ``archive`` takes each out once its last page is committed."""

    honours_dry_run = True

    def __init__(self, name: str, config: KitConfig, context: AdapterContext, folder: dict[str, list[dict[str, Any]]],
                 archive: bool = False) -> None:
        super().__init__(name, config, context)
        self.folder, self.archive = folder, archive

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        for name in sorted(self.folder):
            rows = self.folder[name]
            mark = FileMark(name, len(rows), 0.0, name)
            if self.context.is_seen(mark) and not self.context.full_sync:
                continue
            yield Page(records=[record(o) for o in rows[:3]])
            yield Page(records=[record(o) for o in rows[3:]], done_files=[mark])
            if self.archive and not (self.context.dry_run and self.honours_dry_run):
                del self.folder[name]


class ArchivesInDryRun(Inbox):
    honours_dry_run = False


def inbox_kit(cls: type[Inbox]) -> AdapterContract:
    folder = {name: list(rows) for name, rows in FILES.items()}

    class Kit(AdapterContract):
        def make_adapter(self, context: AdapterContext) -> Inbox:
            return cls("t", KitConfig(), context, folder)

        def make_changing_adapter(self, context: AdapterContext) -> Inbox:
            return cls("t", KitConfig(), context, folder, archive=True)

    return Kit()


def test_an_archiving_source_that_honours_dry_run_passes() -> None:
    inbox_kit(Inbox).test_a_dry_run_changes_nothing_at_the_source()


def test_an_archiving_source_that_ignores_dry_run_fails_the_kit() -> None:
    with pytest.raises(AssertionError, match=r"dry run changed the source: a run after it no longer reads 12 record\(s\)"):
        inbox_kit(ArchivesInDryRun).test_a_dry_run_changes_nothing_at_the_source()


class CsvArchivingInDryRun(CsvAdapter):
    """The CSV source with its dry-run guard removed (see the test): it archives what a dry run read."""


def _no_dry_run_guard(config, context, rejected):  # type: ignore[no-untyped-def]
    return not rejected and config.after_processing == "keep"


def csv_kit(folder: Path, cls: type[CsvAdapter]) -> AdapterContract:
    header = "order_number,shipping_zip_code,sku,quantity,price"
    (folder / "orders_1.csv").write_text(header + "\n" + "\n".join(f"{n},10119,S,1,1" for n in range(1, 6)) + "\n")
    (folder / "orders_2.csv").write_text(header + "\n" + "\n".join(f"{n},10119,S,1,1" for n in range(6, 9)) + "\n")
    for path in folder.glob("*.csv"):
        os.utime(path, (1_700_000_000, 1_700_000_000))  # long settled

    class Kit(AdapterContract):
        def make_adapter(self, context: AdapterContext) -> CsvAdapter:
            return cls("t", CsvConfig(url=f"file://{folder}", page_size=3, settle_seconds=0), context)

        def make_changing_adapter(self, context: AdapterContext) -> CsvAdapter:
            return cls("t", CsvConfig(url=f"file://{folder}", page_size=3, settle_seconds=0, after_processing="archive"), context)

    return Kit()


def test_the_csv_source_archiving_after_a_read_passes_the_dry_run(tmp_path: Path) -> None:
    kit = csv_kit(tmp_path, CsvAdapter)
    kit.test_a_dry_run_changes_nothing_at_the_source()
    kit.test_a_full_sync_reads_everything_again()
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["orders_1.csv", "orders_2.csv"]


def test_a_csv_source_archiving_in_a_dry_run_fails_the_kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("adapters.csv.after.stays", _no_dry_run_guard)
    with pytest.raises(AssertionError, match=r"dry run changed the source: a run after it no longer reads 8 record\(s\)"):
        csv_kit(tmp_path, CsvArchivingInDryRun).test_a_dry_run_changes_nothing_at_the_source()
    assert sorted(p.name for p in (tmp_path / "archive").glob("*.csv")) == ["orders_1.csv", "orders_2.csv"]
