"""`status` stays truthful while a refused shop's orders wait: they are listed as waiting with Karla's answer, and
a daemon drain that leaves them out (its hour between tries) is a failed delivery, not an ``ok`` for the other
shops' orders. Found by review (last5, finding 2).

The daemon runs in-process on an injected clock against the real sandbox (``test_refused_shop_alone``); the
CLI runs as a subprocess against it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from connector.sender import SHOP_REFUSED
from connector.status import state_status
from state import Outbox, Part, open_state
from tests.conftest import SLUG, cli, write_orders
from tests.integration.test_karla_shop_keys import AUSTRIA, two_shops
from tests.integration.test_refused_shop_alone import daemon  # noqa: F401  fixture


def test_a_drain_that_leaves_a_refused_shop_out_is_no_ok(daemon, sandbox, tmp_path: Path) -> None:  # noqa: F811
    now, connector = daemon.clock, daemon.connector
    daemon._deliver_job()  # 1 and 2 go; Austria is refused
    write_orders(tmp_path / "files", "orders_002.csv", [3])
    now[0] += 60
    connector.sync_one(connector.sources["warehouse"])
    now[0] += 30
    daemon._deliver_job()  # 3 goes; Austria is left out for the hour
    assert "3" in sandbox.orders(SLUG) and sandbox.orders(AUSTRIA) == {}
    seen = state_status(connector.settings, connector.db)
    delivery, waiting = seen["delivery"], seen["waiting"]
    assert delivery["status"] == "failed" and f"for shop '{AUSTRIA}'" in delivery["error"], delivery
    assert delivery["delivered"] == 3 and delivery["finished_at"] > delivery["started_at"]  # one failure since the first drain
    assert waiting["count"] == 1 and waiting["next"][0]["order"] == "901", waiting
    assert waiting["next"][0]["why"].startswith(f"{SHOP_REFUSED}: ") and "organisation-level key" in waiting["next"][0]["why"]

    sandbox.scope_keys(organisation={SLUG})  # the merchant's key now serves every shop
    now[0] += 3600
    daemon._deliver_job()
    seen = state_status(connector.settings, connector.db)
    assert sorted(sandbox.orders(AUSTRIA)) == ["901"]
    assert seen["delivery"]["status"] == "ok" and seen["delivery"]["error"] is None, seen["delivery"]
    assert seen["waiting"] == {"count": 0, "next": []} and seen["pending"] == 0


def test_status_says_why_a_refused_shops_orders_wait_and_a_fixed_key_sends_them_at_once(tmp_path: Path, sandbox) -> None:
    sandbox.scope_keys()
    config = two_shops(tmp_path, sandbox.url)
    assert cli(config, "sync").returncode == 2
    seen = json.loads(cli(config, "status", "--json").stdout)
    assert seen["delivery"]["status"] == "failed"
    assert seen["waiting"]["count"] == 1 and seen["waiting"]["next"][0]["shop"] == AUSTRIA, seen["waiting"]
    said = " ".join(cli(config, "status").stdout.split())
    assert "1 of them wait after a failed delivery" in said and f"order 901 ({AUSTRIA}) at the next drain: {SHOP_REFUSED}" in said

    sandbox.scope_keys(organisation={SLUG})
    done = cli(config, "sync")  # not delayed by the note: the fixed key sends the order now
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(sandbox.orders(AUSTRIA)) == ["901"]
    seen = json.loads(cli(config, "status", "--json").stdout)
    assert seen["delivery"]["status"] == "ok" and seen["waiting"]["count"] == 0 and seen["pending"] == 0


def test_the_refusal_note_leaves_a_suspects_note_and_held_rows_alone(tmp_path: Path) -> None:
    """A suspect's note decides that it goes alone (``connector.suspects``); a held row waits for its full sync."""
    db = open_state(tmp_path / "state.db")
    parts = [Part("shop", key, "order_number", "order", "{}", hashlib.md5(key.encode()).hexdigest(), "src", "orders", None)
             for key in ("1", "2", "3")]
    try:
        with db.transaction() as conn:
            Outbox(conn).enqueue(parts, 1.0)
            conn.exec_driver_sql("UPDATE outbox SET held = 1 WHERE order_key = '3'")  # as a full sync cut short holds it
            two = [r for r in Outbox(conn).scan(None, 10) if r.order_key == "2"]
            Outbox(conn).suspect(two, "Karla failed on this batch: 500")
            Outbox(conn).note_refused("shop", f"{SHOP_REFUSED}: first", SHOP_REFUSED)
            Outbox(conn).note_refused("shop", f"{SHOP_REFUSED}: again", SHOP_REFUSED)  # a newer answer replaces it
            notes = dict(conn.exec_driver_sql("SELECT order_key, last_error FROM outbox").fetchall())
            assert Outbox(conn).noted({"shop", "other"}, SHOP_REFUSED) == f"{SHOP_REFUSED}: again"
            assert Outbox(conn).noted({"other"}, SHOP_REFUSED) is None
    finally:
        db.close()
    assert notes == {"1": f"{SHOP_REFUSED}: again", "2": "Karla failed on this batch: 500", "3": None}
