"""Letters left behind by a configuration change (found by a lifecycle review, round 7, findings 4 to 6).

- A shop_slug typo corrected: the waiting orders became letters advising `sync --full`, which reads nothing
  once the files were archived or deleted, and `dlq retry` sent them to the old shop again, to come back as the
  same letters. `dlq retry` keeps them now, saying what to do (review 7a: sending them to the shop their source
  sends to now replaced newer data there, and sent a plugin's routed order to another shop); their advice says
  to move archived files back first.
- A renamed source: `dlq retry` of its letters exited 3 ("try again later") with a raw KeyError text, and
  `status` counted its letters at the top but showed them in no row.
- A source needing a fix: the daemon's line did not say that a fixed setting needs a restart.

Real CLI runs against the sandbox; the Shopware source is never contacted (Karla letters are not read again).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from connector.errors import FatalError
from connector.job_errors import sync_failure
from tests.conftest import SLUG, cli, write_config, write_fulfillments, write_orders

TYPO = "a-typo"


def _puts(sandbox, slug: str) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for r in sandbox.requests if r.method == "PUT" and f"/shops/{slug}/" in r.path)


def _letters(config: Path) -> list[dict]:  # type: ignore[type-arg]
    done = cli(config, "dlq", "list", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _refused_then_corrected(tmp_path: Path, sandbox, after: str) -> Path:  # type: ignore[no-untyped-def]
    """Orders 1 and 2 (one with a parcel) read for shop TYPO, which Karla does not know; the typo corrected:
    their letters say so."""
    sandbox.shops = {SLUG}
    source = {"shop_slug": TYPO, "after_processing": after}
    config = write_config(tmp_path, sandbox.url, source=source)
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    write_fulfillments(tmp_path / "files", "fulfillments_001.csv", ["1,T1,DHL,,2026-11-21T10:00:00+01:00,,"])
    first = cli(config, "sync")
    assert first.returncode == 2 and f"shop '{TYPO}'" in first.stdout + first.stderr, first.stdout + first.stderr
    config.write_text(config.read_text().replace(f'shop_slug = "{TYPO}"\n', ""))  # corrected
    second = cli(config, "sync")
    assert second.returncode == 1, second.stdout + second.stderr
    return config


ADVICE = ("`sync --full` reads the order again for the shop now configured (a CSV source that archived or deleted "
          "its files since: move them back into the source's folder first; with delete they are gone: check the order "
          "in Karla)")


@pytest.mark.parametrize("after", ["archive", "delete", "keep"])
def test_a_letter_for_a_corrected_shop_is_kept_with_the_advice(tmp_path: Path, sandbox, after: str) -> None:  # type: ignore[no-untyped-def]
    """Sent to the shop its source sends to now, the letter could replace newer data there (or a routed order go to
    another shop): it goes nowhere, and says how the order as it is now is sent."""
    config = _refused_then_corrected(tmp_path, sandbox, after)
    letters = _letters(config)
    assert letters and all(letter["stage"] == "karla" and letter["details"]["no_source"] is True for letter in letters)
    assert all(ADVICE in letter["reason"] and "`dlq drop` this letter" in letter["reason"] for letter in letters)
    ids = [str(letter["id"]) for letter in letters]
    sandbox.reset_log()

    done = cli(config, "dlq", "retry", "--all")
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, said
    assert (f"kept letter(s) {', '.join(ids)}: no source sends to shop '{TYPO}' any more: {ADVICE}; then "
            f"`dlq drop {' '.join(ids)}`") in said, said
    assert not [r for r in sandbox.requests if r.method == "PUT"]  # to no shop: not the old one, not the new one
    assert [str(letter["id"]) for letter in _letters(config)] == ids


def test_sync_full_after_moving_archived_files_back_sends_the_order_and_drop_clears_the_letter(  # type: ignore[no-untyped-def]
        tmp_path: Path, sandbox) -> None:
    """What the letter advises, done: the files moved back from ``archive``, `sync --full`, `dlq drop`."""
    config = _refused_then_corrected(tmp_path, sandbox, "archive")
    files = tmp_path / "files"
    for archived in sorted((files / "archive").iterdir()):
        archived.rename(files / archived.name)
    refused = _puts(sandbox, TYPO)
    full = cli(config, "sync", "--full")
    assert full.returncode == 0, full.stdout + full.stderr
    assert sorted(sandbox.orders(SLUG)) == ["1", "2"] and _puts(sandbox, TYPO) == refused  # not the old shop again
    assert [t["tracking_number"] for t in sandbox.orders(SLUG)["1"]["trackings"]] == ["T1"]
    ids = [str(letter["id"]) for letter in _letters(config)]
    assert ids and cli(config, "dlq", "drop", *ids).returncode == 0
    status = json.loads(cli(config, "status", "--json").stdout)
    assert status["pending"] == 0 and status["dead"] == 0


def test_an_older_letter_is_recognised_by_its_reason(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    """A letter an earlier release wrote carries no ``no_source`` tag: its reason says what it is."""
    config = _refused_then_corrected(tmp_path, sandbox, "keep")
    db = sqlite3.connect(tmp_path / "state.db")
    with db:
        db.execute("UPDATE dead_letter SET details = ?, reason = ?", (
            json.dumps({"status": None, "key": None, "message": "x", "errors": []}),
            f"Karla refuses shop '{TYPO}' and no source sends to it any more (a shop_slug corrected since this order "
            "was read): `sync --full` reads it again for the shop now configured; then drop this letter"))
    db.close()
    sandbox.reset_log()
    done = cli(config, "dlq", "retry", "--all")
    assert done.returncode == 2 and f"no source sends to shop '{TYPO}' any more" in done.stdout, done.stdout
    assert not [r for r in sandbox.requests if r.method == "PUT"] and len(_letters(config)) == 2


def test_retry_does_not_send_an_old_letter_over_the_newer_order(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    """Review 7a, finding 1: the order changed after the typo was corrected, and the first sync delivered its new
    version to the right shop (``test-shop`` sorts before the typo) before the typo's order became a letter; sent
    there, the letter's old address replaced the new one, and with the file archived nothing repaired it."""
    typo = f"{SLUG}p"
    sandbox.shops = {SLUG}
    config = write_config(tmp_path, sandbox.url, source={"shop_slug": typo, "after_processing": "archive"})
    write_orders(tmp_path / "files", "orders_001.csv", [1], zip_code="10119")
    assert cli(config, "sync").returncode == 2
    config.write_text(config.read_text().replace(f'shop_slug = "{typo}"\n', ""))  # corrected
    write_orders(tmp_path / "files", "orders_002.csv", [1], zip_code="20095")  # the order changed since
    assert cli(config, "sync").returncode == 1
    assert sandbox.orders(SLUG)["1"]["address"]["zip_code"] == "20095" and len(_letters(config)) == 1

    done = cli(config, "dlq", "retry", "--all")
    assert sandbox.orders(SLUG)["1"]["address"]["zip_code"] == "20095", done.stdout  # not the letter's 10119
    assert done.returncode == 2, done.stdout + done.stderr
    assert cli(config, "sync", "--full").returncode == 0
    assert sandbox.orders(SLUG)["1"]["address"]["zip_code"] == "20095"


ROUTE = '''"""A 1.1-style adapter: routes records to another Karla shop by Record.shop_slug, not overriding shop_slugs()."""
from __future__ import annotations
import json
from pathlib import Path
from typing import Literal
from pydantic import Field
from adapters.base import Page, Record, SourceConfig, StreamSpec
from connector.karla import OrderPlacement


class RouteConfig(SourceConfig):
    type: Literal["route"] = "route"
    path: Path = Field(description="JSON Lines file")


class RouteAdapter:
    type = "route"
    Config = RouteConfig

    def __init__(self, name, config, context) -> None:
        self.name, self.config, self.context = name, config, context

    def check(self):
        return ["ok"]

    def close(self):
        pass

    def streams(self):
        return [StreamSpec("orders", is_sorted=True)]

    def read(self, stream, cursor):
        page = Page()
        for i, text in enumerate(self.config.path.read_text().splitlines(), start=1):
            if i <= int(cursor or 0):
                continue
            row = json.loads(text)
            order = OrderPlacement.model_validate({"order_number": str(row["number"]), "address": {"zip_code": "10115"},
                                                   "products": [{"sku": "A", "quantity": 1}]})
            page.records.append(Record(key=str(row["number"]), order=order, location=f"{self.config.path.name}:{i}",
                                       shop_slug=row.get("shop")))
            page.cursor = str(i)
        yield page
'''


def _route_plugin(tmp_path: Path) -> dict[str, str]:
    """Installed as pip would (a dist-info with an entry point): the PYTHONPATH for `cli(env=...)`."""
    site = tmp_path / "site"
    info = site / "rvroute-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "rvroute.py").write_text(ROUTE)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rvroute\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[karla_connector.adapters]\nroute = rvroute:RouteAdapter\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def test_retry_sends_a_routed_order_to_its_own_shop(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    """Review 7a, finding 2: a plugin routing a record to another brand's shop (``Record.shop_slug``) need not name
    that shop in ``shop_slugs()`` (docs/adapters.md); its ordinary 422 letter went to the source's own shop."""
    env = _route_plugin(tmp_path)
    data = tmp_path / "orders.jsonl"
    data.write_text(json.dumps({"number": 7, "shop": "second-shop"}) + "\n" + json.dumps({"number": 8}) + "\n")
    config = write_config(tmp_path, sandbox.url)
    text = config.read_text()
    config.write_text(text[:text.index("[sources.warehouse]")] + f'[sources.erp]\ntype = "route"\npath = "{data}"\n')
    sandbox.refuse_order("7", 422, "order_invalid")
    assert cli(config, "sync", env=env).returncode == 1
    sandbox.heal()

    done = cli(config, "dlq", "retry", "--all", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7" not in sandbox.orders(SLUG) and list(sandbox.orders("second-shop")) == ["7"]
    assert _letters(config) == []


def _shopware(channels: dict[str, str]) -> str:
    lines = "".join(f'"{channel}" = "{slug}"\n' for channel, slug in channels.items())
    return ('[sources.warehouse]\ntype = "shopware"\nbase_url = "http://127.0.0.1:9"\nclient_id = "SWIAEXAMPLE"\n'
            f'client_secret = "not-used-here"\n[sources.warehouse.sales_channels]\n{lines}')


def test_letters_of_a_renamed_source_say_so_and_status_shows_them(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive"}, karla={"retry_attempts": 1})
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [1])
    write_fulfillments(files, "fulfillments_001.csv", ["9,,DHL,,2026-11-21T10:00:00+01:00,,"])  # bad row
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    sandbox.faults.down = True  # Karla away: order 2 waits under the old name, order 3 under the new one
    write_orders(files, "orders_002.csv", [2])
    assert cli(config, "sync").returncode == 3
    config.write_text(config.read_text().replace("[sources.warehouse]", "[sources.erp]"))  # renamed
    write_orders(files, "orders_003.csv", [3])
    assert cli(config, "sync").returncode == 3

    done = cli(config, "dlq", "retry", str(letter["id"]))
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, said  # not 3: no later run can read it under that name
    assert f"kept letter(s) {letter['id']}: source 'warehouse' is no longer configured (renamed or removed?)" in said
    assert f"`dlq drop {letter['id']}`" in said and "KeyError" not in said and "('warehouse')" not in said, said

    status = cli(config, "status", env={"COLUMNS": "250"})
    assert status.returncode == 0 and "warehouse (not configured)" in status.stdout, status.stdout
    data = json.loads(cli(config, "status", "--json").stdout)
    gone, erp = data["sources"]["warehouse"], data["sources"]["erp"]
    assert (gone["configured"], gone["pending"], gone["dead"]) == (False, 1, 1), gone
    assert (erp["configured"], erp["type"], erp["pending"]) == (True, "csv", 1), erp
    for count in ("pending", "dead"):  # the top counts and the table agree
        assert data[count] == sum(s[count] for s in data["sources"].values()), data


def test_a_source_needing_a_fix_says_a_restart_takes_the_fix() -> None:
    """Pure wording: the daemon polls it again with the settings and credentials read at start."""
    failure = sync_failure("shop", FatalError("Shopify refused the access token (401): check access_token"), "s.db")
    assert failure.message.startswith("source shop failed, needs a fix (tried again every poll): Shopify refused")
    assert failure.message.endswith("a changed setting or credential takes effect once the service is restarted")


def test_a_source_not_valid_in_this_shell_still_counts_for_its_shop(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    """A letter for the shop of a source that is not valid here (disabled, its secret missing; a plugin that does
    not load) is for a shop a source sends to: it is sent again there, as before, not kept as if the shop were gone."""
    config = write_config(tmp_path, sandbox.url, source={"shop_slug": "second-shop"})
    sandbox.refuse_order("1", 422, "order_invalid")
    write_orders(tmp_path / "files", "orders_001.csv", [1])
    assert cli(config, "sync").returncode == 1 and len(_letters(config)) == 1
    sandbox.heal()
    text = config.read_text()  # the same shop, from a disabled Shopware source without its secret
    config.write_text(text[:text.index("[sources.warehouse]")] + _shopware({}).replace(
        'client_secret = "not-used-here"\n', 'shop_slug = "second-shop"\nenabled = false\n'))
    done = cli(config, "dlq", "retry", "--all")
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(sandbox.orders("second-shop")) == ["1"] and _letters(config) == []
