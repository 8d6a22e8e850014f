"""`failing_order_max_age_hours` counts from Karla's first failure on the order alone, not from when the order
was queued: orders pile up through an outage or a stopped daemon, and one that waited 30 hours became a letter
on its first 500, saying Karla "kept failing on it alone for 30 hours" (found by review)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from connector.app import Connector, ExitCode
from connector.sandbox.faults import Faults
from connector.settings import load_settings
from tests.conftest import SLUG, write_config, write_orders
from tests.integration.test_delivery import Recording


def test_an_order_queued_through_an_outage_gets_the_full_wait_after_its_first_failure_alone(tmp_path: Path, sandbox) -> None:
    now = [datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)]
    config = write_config(tmp_path, sandbox.url, karla={"bulk_max_orders": 2, "retry_attempts": 2, "failing_order_max_age_hours": 24})
    connector = Connector(load_settings(config), clock=lambda: now[0], transport=Recording(), sleep=lambda _: None)
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2, 3])
    sandbox.faults = Faults(down=True)  # Karla down over the weekend: everything stays queued
    assert connector.sync().exit_code == ExitCode.UNFINISHED and connector.status()["pending"] == 3
    now[0] += timedelta(hours=30)  # back after 30 hours, but failing on order 1
    sandbox.faults = Faults()
    sandbox.refuse_order("1", 500, "unexpected", "An unexpected error occurred")
    assert connector.sync().exit_code == ExitCode.UNFINISHED  # its batch gave up: 1 and 2 are suspects
    first_alone = connector.sync()  # its first failure alone: it waits, it is no letter
    assert not first_alone.delivery.dead_letters and first_alone.delivery.postponed == 1
    assert set(sandbox.orders(SLUG)) == {"2", "3"}
    (waiting,) = connector.status()["waiting"]["next"]
    assert waiting["why"].startswith("Karla failed on this batch, then on this order alone: ")
    now[0] += timedelta(hours=20)  # failing again later does not restart the wait
    assert connector.sync().delivery.postponed == 1
    now[0] += timedelta(hours=5)
    late = connector.sync()
    assert late.exit_code == ExitCode.DEAD_LETTERS and connector.status()["pending"] == 0
    (reason,) = late.delivery.dead_letters
    assert "Karla kept failing on order 1 alone for 25 hours" in reason, reason  # not 55: queued 55 hours ago
    connector.close()
