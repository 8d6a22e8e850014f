"""An order Karla fails on alone is put off for up to an hour between tries, for up to three days: every
`sync` that leaves one waiting must say so and exit 3, or a cron job sees success while the order is stuck."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SLUG, cli, write_config, write_fulfillments, write_orders


def test_every_sync_that_leaves_an_order_put_off_exits_3_and_says_when_it_is_tried_again(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_001.csv", [7, 8, 9])
    sandbox.refuse_order("8", 500, "internal_error", "boom")
    runs = [cli(config, "sync") for _ in range(3)]
    assert [r.returncode for r in runs] == [3, 3, 3], [r.stdout + r.stderr for r in runs]
    assert set(sandbox.orders(SLUG)) == {"7", "9"}
    # the first run ends as an outage (the batch gave up); the next ones put order 8 off, then find it waiting
    for run in runs[1:]:
        assert "1 order put off after Karla failed on it; tried again from 20" in run.stdout, run.stdout
        assert "(`status` lists it)" in run.stdout and "postponed (Karla failed" not in run.stdout
    assert "order 8 (" in cli(config, "status").stdout
    # a dry run changes nothing and sends nothing: it is not held up by the waiting order
    dry = cli(config, "sync", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert [item["id"] for item in json.loads(dry.stdout)["would_send"]] == ["8"]


def test_parcels_waiting_for_their_order_still_exit_0(tmp_path: Path, sandbox) -> None:
    # parcels often arrive before their order: a normal state, not an unfinished run
    config = write_config(tmp_path, sandbox.url)
    write_fulfillments(tmp_path / "files", "fulfillments_001.csv", ["5,T5,DHL,,,,"])
    first, second = cli(config, "sync"), cli(config, "sync")  # the second finds it waiting, not due yet
    assert [first.returncode, second.returncode] == [0, 0], first.stdout + second.stdout
    assert "1 waiting for their order" in first.stdout and "put off" not in first.stdout + second.stdout
    assert "order_not_found" in cli(config, "status").stdout
