"""A plugin whose close() fails the same way every poll: the daemon builds an adapter per poll, and each said a
WARNING (~1,440 a day at poll_interval = 60). It is said once while it lasts (repeats at DEBUG), again when the
failure changes, and an INFO once close() works again. Real reads into a real state file, polled in this process
as the daemon polls."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adapters.base import Page, StreamSpec
from connector.engine import SourceRuntime, sync_source
from state import open_state
from tests.sdk.test_contract_kit import KitConfig

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
_failure: list[str] = []  # what the next close() raises; empty: it works


class ClosesBadly:
    type = "kit"

    def __init__(self, name: str, config: KitConfig, context: object) -> None: ...

    def streams(self) -> list[StreamSpec]:
        return [StreamSpec("orders")]

    def read(self, stream: str, cursor: str | None) -> Iterator[Page]:
        yield Page(cursor="1")

    def close(self) -> None:
        if _failure:
            raise OSError(_failure[0])


def test_a_close_failing_every_poll_is_said_once_until_it_works(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    db = open_state(tmp_path / "s.db")
    rt = SourceRuntime("erp", ClosesBadly, KitConfig(), "shop")  # type: ignore[arg-type]
    caplog.set_level(logging.DEBUG, logger="connector.sync")

    def poll(failure: str | None) -> None:
        _failure[:] = [failure] if failure else []
        sync_source(db, rt, clock=lambda: NOW)

    def said(level: int, words: str) -> int:
        return sum(1 for r in caplog.records if r.levelno == level and words in r.getMessage())

    try:
        for failure in ["connection reset"] * 5 + ["broken pipe"] * 2 + [None, None, "connection reset"]:
            poll(failure)
    finally:
        db.close()
    reset = "source erp: the kit adapter's close() failed: OSError: connection reset"
    assert said(logging.WARNING, reset) == 2, caplog.text  # its first poll, and again after it had passed
    assert said(logging.DEBUG, reset) == 4, caplog.text
    assert said(logging.WARNING, "close() failed: OSError: broken pipe") == 1, caplog.text  # another failure
    assert said(logging.INFO, "source erp: the kit adapter's close() works again") == 1, caplog.text
