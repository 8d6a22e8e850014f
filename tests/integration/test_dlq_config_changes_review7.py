"""Letters left behind by a configuration change (found by a lifecycle review, round 7, findings 4 to 6).

- A shop_slug typo corrected: the waiting orders became letters advising `sync --full`, which reads nothing
  once the files were archived or deleted, and `dlq retry` sent them to the old shop again, to come back as the
  same letters. `dlq retry` now sends them to the shop their source sends to now (the one shop: a source with
  several, as Shopware's sales channels, is not guessed at).
- A renamed source: `dlq retry` of its letters exited 3 ("try again later") with a raw KeyError text, and
  `status` counted its letters at the top but showed them in no row.
- A source needing a fix: the daemon's line did not say that a fixed setting needs a restart.

Real CLI runs against the sandbox; the Shopware source is never contacted (Karla letters are not read again).
"""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("after", ["archive", "delete", "keep"])
def test_a_letter_for_a_corrected_shop_goes_to_the_shop_its_source_sends_to_now(tmp_path: Path, sandbox,  # type: ignore[no-untyped-def]
                                                                                after: str) -> None:
    config = _refused_then_corrected(tmp_path, sandbox, after)
    letters = _letters(config)
    assert letters and all(letter["stage"] == "karla" for letter in letters)
    assert "`dlq retry` sends it to the shop its source sends to now" in letters[0]["reason"]
    refused = _puts(sandbox, TYPO)

    done = cli(config, "dlq", "retry", "--all")
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert f"for shop '{TYPO}', which no source sends to any more: queued for '{SLUG}'" in said, said
    assert sorted(sandbox.orders(SLUG)) == ["1", "2"] and _puts(sandbox, TYPO) == refused  # not the old shop again
    assert [t["tracking_number"] for t in sandbox.orders(SLUG)["1"]["trackings"]] == ["T1"]
    assert _letters(config) == []
    status = json.loads(cli(config, "status", "--json").stdout)
    assert status["pending"] == 0 and status["dead"] == 0


def _shopware(channels: dict[str, str]) -> str:
    lines = "".join(f'"{channel}" = "{slug}"\n' for channel, slug in channels.items())
    return ('[sources.warehouse]\ntype = "shopware"\nbase_url = "http://127.0.0.1:9"\nclient_id = "SWIAEXAMPLE"\n'
            f'client_secret = "not-used-here"\n[sources.warehouse.sales_channels]\n{lines}')


def _as_shopware(config: Path, channels: dict[str, str]) -> None:
    """The letters' source, ``warehouse``, configured as a Shopware shop now: only its shops matter here."""
    text = config.read_text()
    config.write_text(text[:text.index("[sources.warehouse]")] + _shopware(channels))


def test_a_source_with_several_shops_keeps_the_letter_rather_than_guess(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    config = _refused_then_corrected(tmp_path, sandbox, "keep")
    _as_shopware(config, {"0a": SLUG, "0b": "shop-at"})
    ids = [str(letter["id"]) for letter in _letters(config)]
    sandbox.reset_log()

    done = cli(config, "dlq", "retry", "--all")
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, said
    assert (f"no source sends to shop '{TYPO}' any more, and source 'warehouse' sends to several (shop-at, {SLUG})"
            in said), said
    assert f"`sync --full` reads it again for its shop; then `dlq drop {' '.join(ids)}`" in said, said
    assert not [r for r in sandbox.requests if r.method == "PUT"]  # to no shop: not the old one, not a guessed one
    assert [str(letter["id"]) for letter in _letters(config)] == ids


def test_a_source_whose_channels_all_go_to_one_shop_sends_there(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    config = _refused_then_corrected(tmp_path, sandbox, "keep")
    _as_shopware(config, {"0a": SLUG})
    done = cli(config, "dlq", "retry", "--all")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(sandbox.orders(SLUG)) == ["1", "2"] and _letters(config) == []


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
