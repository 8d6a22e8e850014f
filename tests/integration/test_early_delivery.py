"""Early delivery: a big sync hands complete orders to a second process while it still reads.

The reading side is driven here page by page, as the engine drives it, so what may go before reading
ends is asserted without timing: only full batches of orders from the last stream, each with its parcels.
The delivery process is real (forked) and talks HTTP to the sandbox on loopback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adapters.base import Page, Record
from connector.app import Connector
from connector.early import EarlyDelivery, Gone
from connector.engine import commit_page
from connector.errors import ConfigError, Unavailable
from connector.karla.models import OrderPlacement, Tracking
from connector.settings import load_settings
from state import Outbox
from tests.conftest import API_KEY, SLUG, cli, write_config, write_fulfillments, write_orders

NOW = 1_790_000_000.0


def _connector(tmp_path: Path, sandbox, **karla: object) -> Connector:
    return Connector(load_settings(write_config(tmp_path, sandbox.url, karla={"deliver_while_reading_after": 1, **karla})))


def _order(n: int) -> Record:
    return Record(key=str(n), order=OrderPlacement(order_number=str(n), address={"zip_code": "10119"}))


def _parcel(n: int) -> Record:
    return Record(key=str(n), trackings=[Tracking(tracking_number=f"T{n}")])


def _read(connector: Connector, early: EarlyDelivery, numbers: range, *, page: int = 40) -> None:
    """Parcels first, then orders in pages (the CSV source's order), telling ``early`` what the engine tells it."""
    rt = connector.sources["warehouse"]
    early.stream(rt.name, "fulfillments", False)
    commit_page(connector.db, rt, "fulfillments", Page(records=[_parcel(n) for n in numbers]), full=False, now=NOW)
    early.stream(rt.name, "orders", True)
    for start in range(numbers.start, numbers.stop, page):
        counts = commit_page(connector.db, rt, "orders", Page(records=[_order(n) for n in range(start, min(start + page, numbers.stop))]),
                             full=False, now=NOW)
        early.page(counts.enqueued)


@contextmanager
def _mid_sync(connector: Connector, sandbox, *, sent: int = 2) -> Iterator[EarlyDelivery]:
    """120 orders read, reading not yet over, and ``sent`` full batches already at Karla."""
    early = EarlyDelivery(connector.settings, connector.db)
    try:
        _read(connector, early, range(1, 121))
        assert early.started and sandbox.wait_for(lambda sb: len(sb.requests) >= sent)
        yield early
    finally:
        early.close()


def _pending(connector: Connector) -> int:
    with connector.db.read() as conn:
        return Outbox(conn).pending_count()


def test_full_batches_go_while_reading_and_the_rest_after(tmp_path: Path, sandbox) -> None:
    connector = _connector(tmp_path, sandbox)
    rt = connector.sources["warehouse"]
    # order 999 is already at Karla; this run only brings a new parcel for it (no order part)
    commit_page(connector.db, rt, "orders", Page(records=[_order(999)]), full=False, now=NOW)
    connector.deliver()
    commit_page(connector.db, rt, "fulfillments", Page(records=[_parcel(999)]), full=False, now=NOW)
    sandbox.reset_log()
    with _mid_sync(connector, sandbox) as early:
        # while reading goes on: two full batches of complete orders; the 20 left over wait, and so does
        # the parcel of order 999, which is not an order of this run's last stream
        assert [r.items for r in sandbox.requests] == [50, 50]
        assert sandbox.orders(SLUG)["999"].get("trackings") in (None, [])
        delivered = {k: v for k, v in sandbox.orders(SLUG).items() if k != "999"}
        assert len(delivered) == 100 and all(len(o["trackings"]) == 1 for o in delivered.values())
        result = early.finish()
    assert result is not None and result.orders == 120 and result.trackings == 121
    assert [r.items for r in sandbox.requests] == [50, 50, 21] and early.stats[0] == 3
    assert [t["tracking_number"] for t in sandbox.orders(SLUG)["999"]["trackings"]] == ["T999"]
    assert _pending(connector) == 0


def test_karlas_answer_is_recorded_while_the_delivery_process_waits_for_the_reader(tmp_path: Path, sandbox) -> None:
    connector = _connector(tmp_path, sandbox)
    early = EarlyDelivery(connector.settings, connector.db)
    try:
        # 100 orders: the first 50 go; the next 50 fill a batch that waits for a 101st order or the end
        _read(connector, early, range(1, 101), page=50)
        assert sandbox.wait_for(lambda sb: len(sb.requests) >= 1)
        # the reader is silent now (a slow next file): the answer it got must not wait for it
        assert _until(lambda: _pending(connector) == 50), "the acknowledged batch is still pending"
    finally:
        early.close()


def _until(condition: Callable[[], bool], within: float = 30.0) -> bool:
    """Poll ``condition`` (another process's state or exit has no event to wait on) until a deadline."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_stop_request_ends_it_with_the_rest_pending(tmp_path: Path, sandbox) -> None:
    connector = _connector(tmp_path, sandbox)
    with _mid_sync(connector, sandbox) as early:
        early.stop()
        result = early.finish()
    assert result is not None and result.orders == 100
    assert len(sandbox.requests) == 2 and _pending(connector) == 20
    assert connector.deliver().orders == 20 and len(sandbox.orders(SLUG)) == 120


def test_if_the_delivery_process_dies_the_reader_delivers_the_rest(tmp_path: Path, sandbox) -> None:
    connector = _connector(tmp_path, sandbox)
    with _mid_sync(connector, sandbox) as early:
        early._proc.kill()  # as the kernel's OOM killer would
        with pytest.raises(Gone, match="exit code -9"):
            early.finish()
    # what it did not mark as delivered is still pending: nothing is lost
    connector.deliver()
    assert len(sandbox.orders(SLUG)) == 120 and _pending(connector) == 0


def test_karla_refusing_the_key_is_a_config_error_with_everything_pending(tmp_path: Path, sandbox, monkeypatch) -> None:
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__API_KEY", "wrong-key-123456")
    connector = _connector(tmp_path, sandbox)
    with _mid_sync(connector, sandbox, sent=1) as early, pytest.raises(ConfigError, match="api_key"):
        early.finish()
    assert _pending(connector) == 120 and sandbox.orders(SLUG) == {}


def test_karla_down_ends_it_as_unavailable_with_the_counts_so_far(tmp_path: Path, sandbox) -> None:
    connector = _connector(tmp_path, sandbox, retry_attempts=1)
    with _mid_sync(connector, sandbox) as early, pytest.raises(Unavailable) as caught:
        sandbox.fail_next(503, count=1000)
        early.finish()
    assert caught.value.result.orders == 100  # type: ignore[attr-defined]
    assert _pending(connector) == 20


def test_a_big_cli_sync_delivers_from_a_second_process_at_the_minimum_of_requests(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, karla={"deliver_while_reading_after": 1}, source={"page_size": 20})
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", range(1, 301))
    write_fulfillments(files, "fulfillments_001.csv", [f"{n},T{n},DHL,,,SKU-{n}-0,1" for n in range(1, 301)])
    result = cli(config, "sync")
    assert result.returncode == 0, result.stderr
    assert "delivered 300 orders and 300 trackings" in result.stdout
    assert any("delivery process" in json.loads(line)["msg"] for line in result.stderr.splitlines() if line.startswith("{"))
    assert API_KEY not in result.stdout + result.stderr  # the delivery process masks secrets too
    # one request per 50 orders, and every order arrived once, with its parcel
    assert [r.items for r in sandbox.requests] == [50] * 6
    orders = sandbox.orders(SLUG)
    assert len(orders) == 300 and all([t["tracking_number"] for t in o["trackings"]] == [f"T{k}"] for k, o in orders.items())
    again = cli(config, "sync")
    assert again.returncode == 0 and "in 0 Karla requests" in again.stdout


def test_when_karla_is_down_the_delivery_process_ends_and_reading_goes_on(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, karla={"deliver_while_reading_after": 1, "retry_attempts": 1},
                          source={"page_size": 20})
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", range(1, 3001), lines=1)
    write_fulfillments(files, "fulfillments_001.csv", [f"{n},T{n},DHL,,,SKU-{n}-0,1" for n in range(1, 3001)])
    sandbox.fail_next(503, count=100_000)
    result = cli(config, "sync")
    # the first early batch found Karla down and ended the delivery process; reading went on to the end,
    # and the reader did not try again on its own (one outage, reported once: exit 3)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "in 1 Karla requests" in result.stdout and len(sandbox.requests) == 1
    status = json.loads(cli(config, "status", "--json").stdout)
    assert status["sources"]["warehouse"]["last_run"]["status"] == "ok"
    assert status["pending"] == 3000
    sandbox.heal()
    again = cli(config, "sync")
    assert again.returncode == 0, again.stderr
    assert "delivered 3000 orders and 3000 trackings" in again.stdout


def test_small_syncs_stay_in_one_process(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)  # the default: 1000 parts before a second process starts
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [1, 2])
    result = cli(config, "sync")
    assert result.returncode == 0, result.stderr
    assert not any("delivery process" in line for line in result.stderr.splitlines())


def test_when_the_reader_is_killed_the_delivery_process_ends_and_a_rerun_delivers_everything(tmp_path: Path, sandbox) -> None:
    # the delivery process starts with the first page of orders (after the 20k parcels): it has orders to send
    config = write_config(tmp_path, sandbox.url, karla={"deliver_while_reading_after": 20_001}, source={"page_size": 100})
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", range(1, 20001), lines=1)
    write_fulfillments(files, "fulfillments_001.csv", [f"{n},T{n},DHL,,,SKU-{n}-0,1" for n in range(1, 20001)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "connector", "--config", str(config), "sync"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        pid = next((int(m.group(1)) for line in proc.stderr if (m := re.search(r"delivery process (\d+)", line))), None)  # type: ignore[union-attr]
        assert pid is not None
        # Frozen right after it started the delivery process, the reader is seconds away from the end of
        # its 20k orders; then it dies without any clean-up, as under SIGKILL from the OOM killer. The
        # delivery process sees the pipe close and ends after the request it may have on the wire.
        proc.send_signal(signal.SIGSTOP)
        proc.kill()
        proc.wait(timeout=30)
        assert _until(lambda: _gone(pid)), "the delivery process outlived its reader"
    finally:
        proc.kill()
        proc.wait()
    assert len(sandbox.orders(SLUG)) < 20000  # it really was cut short
    again = cli(config, "sync")
    assert again.returncode == 0, again.stderr
    orders = sandbox.orders(SLUG)
    assert len(orders) == 20000 and all(o["trackings"] for o in orders.values())


def _gone(pid: int) -> bool:
    """Whether process ``pid`` (not our child: we cannot wait for it) has ended (gone, or a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_the_daemon_leaves_a_source_alone_while_it_is_being_read(tmp_path: Path, sandbox) -> None:
    from connector.daemon import Daemon

    connector = _connector(tmp_path, sandbox)
    rt = connector.sources["warehouse"]
    # mid-sync: the parcels are queued, their orders (read next) are not
    commit_page(connector.db, rt, "fulfillments", Page(records=[_parcel(n) for n in range(1, 4)]), full=False, now=NOW)
    daemon = Daemon(connector)
    daemon._reading.add(rt.name)
    daemon._deliver_job()  # the delivery timer fires while the source is still being read
    assert sandbox.requests == [] and _pending(connector) == 3
    commit_page(connector.db, rt, "orders", Page(records=[_order(n) for n in range(1, 4)]), full=False, now=NOW)
    daemon._reading.discard(rt.name)
    daemon._deliver_job()
    assert [r.items for r in sandbox.requests] == [3] and _pending(connector) == 0
    assert all(len(o["trackings"]) == 1 for o in sandbox.orders(SLUG).values())


def test_a_shop_refused_while_reading_holds_back_no_other_shops_last_batch(tmp_path: Path, sandbox) -> None:
    # The delivery process drains full batches while the reader reads, then the last partial ones; a shop Karla
    # refused in the first drain ended the process there, leaving the other shops' last batch for another run.
    sandbox.shops = {SLUG}
    second = tmp_path / "second"
    second.mkdir()
    extra = f'[sources.second]\ntype = "csv"\nurl = "file://{second}"\nshop_slug = "a-typo"\nsettle_seconds = 0\n'
    config = write_config(tmp_path, sandbox.url, karla={"deliver_while_reading_after": 1, "bulk_max_orders": 5}, extra=extra)
    write_orders(second, "orders_001.csv", range(100, 105))  # one full batch for the shop Karla does not know
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 13))  # two full batches and a partial one
    result = cli(config, "sync")
    assert result.returncode == 2 and "'a-typo'" in result.stdout, result.stdout + result.stderr
    assert "delivered 12 orders" in result.stdout  # the summary, as without the delivery process
    assert len(sandbox.orders(SLUG)) == 12


def test_the_delivery_process_dead_letters_orders_for_a_shop_no_source_sends_to(tmp_path: Path, sandbox) -> None:
    # An order waiting for a shop slug corrected since is a letter saying what to do, not an error (exit 2) on
    # every big sync; the delivery process is told the configured shops, as the reader's own drain is.
    sandbox.shops = {SLUG}
    second = tmp_path / "second"
    second.mkdir()
    extra = f'[sources.second]\ntype = "csv"\nurl = "file://{second}"\nshop_slug = "a-typo"\nsettle_seconds = 0\n'
    config = write_config(tmp_path, sandbox.url, karla={"deliver_while_reading_after": 1, "bulk_max_orders": 5}, extra=extra)
    write_orders(second, "orders_001.csv", [100])
    assert cli(config, "sync").returncode == 2  # Karla knows no shop "a-typo": the order waits
    config.write_text(config.read_text().replace('shop_slug = "a-typo"\n', ""))
    write_orders(tmp_path / "files", "orders_001.csv", range(1, 13))  # a big sync: the delivery process drains
    result = cli(config, "sync")
    assert result.returncode == 1 and "sync --full" in result.stdout, result.stdout + result.stderr
    assert len(sandbox.orders(SLUG)) == 12
