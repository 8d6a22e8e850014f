"""The real CLI, as a subprocess, from the fake Shopware to the Karla sandbox (entry point ``shopware``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any


from tests.conftest import SLUG, cli
from tests.shopware import factory as f
from tests.shopware.conftest import SECRET, SECRET_ENV, cli_config
from tests.shopware.fake_server import FakeShopware


def test_sync_and_check_through_the_cli(tmp_path: Path, sandbox: Any, live_shop: FakeShopware) -> None:
    hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    items = [f.line_item("Shirt", "SKU-1", 2, 20.0)]
    shipped = f.delivery([(items[0], 1)], codes=["00340434161094042557"], status="shipped", ship_to=f.address(zipcode="80802"))
    order = live_shop.insert(f.order("10001", items=items, deliveries=[shipped]), at=hour_ago)
    live_shop.insert(f.order("10002", status="open"), at=hour_ago)  # not sent: open, nothing shipped
    config, env = cli_config(tmp_path, sandbox.url, live_shop.url), SECRET_ENV

    checked = cli(config, "check", env=env)
    assert checked.returncode == 0, checked.stderr
    assert "6.6.7.1" in checked.stdout + checked.stderr

    synced = cli(config, "sync", env=env)
    assert synced.returncode == 0, synced.stderr
    karla = sandbox.orders(SLUG)
    assert set(karla) == {"10001"}
    assert karla["10001"]["address"]["zip_code"] == "80802"
    assert [(t["tracking_number"], t.get("carrier_reference")) for t in karla["10001"]["trackings"]] == [("00340434161094042557", "dhl")]

    live_shop.add_tracking_code(order["deliveries"][0]["id"], "00340434161094042558",
                                at=datetime.now(timezone.utc) - timedelta(minutes=2))  # within the overlap
    # The next run starts within a second; with the shop's clock (whole seconds in Date) both windows could
    # end in the same second. A shop clock running ahead makes the adapter follow ours (milliseconds).
    live_shop.skew = timedelta(seconds=90)
    again = cli(config, "sync", env=env)
    assert again.returncode == 0, again.stderr
    numbers = sorted(t["tracking_number"] for t in sandbox.orders(SLUG)["10001"]["trackings"])
    assert numbers == ["00340434161094042557", "00340434161094042558"]
    for run in (checked, synced, again):
        assert SECRET not in run.stdout + run.stderr
