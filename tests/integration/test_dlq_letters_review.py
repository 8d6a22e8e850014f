"""Dead letters as a merchant meets them through the CLI (found by review cli5): ids are never given again,
letters that name no order stand until `dlq retry` reads their fixed file (review diff5: clearing them on any
clean read of the file's name cleared yesterday's unfixed row with today's export), `dlq retry` exit codes, a
parcel's line."""

from __future__ import annotations

import json
import os
from pathlib import Path

from connector.sandbox.faults import error
from tests.conftest import ORDER_HEADER, SLUG, cli, order_rows, write_config, write_fulfillments, write_orders


def _letters(config: Path) -> list[dict]:
    listed = cli(config, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _bad_date(folder: Path, name: str, numbers: list[int], bad: int) -> Path:
    """Orders ``numbers``, order ``bad`` with a date no one can read: a letter at its first line."""
    rows = [row.replace("2026-11-20T09:15:00+01:00", "2026-11-40") if row.startswith(f"{bad},") else row
            for n in numbers for row in order_rows(n)]
    path = folder / name
    path.write_text("\n".join([ORDER_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_a_dropped_letters_id_is_never_given_to_a_newer_letter(tmp_path: Path, sandbox) -> None:
    # `dlq drop 3` then a new bad row: the new letter took id 3, so an id from an earlier `dlq list` named it
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    _bad_date(files, "orders_001.csv", [1, 2, 3], bad=3)
    _bad_date(files, "orders_002.csv", [4], bad=4)
    assert cli(config, "sync").returncode == 1
    before = [letter["id"] for letter in _letters(config)]
    assert cli(config, "dlq", "drop", str(max(before))).returncode == 0
    _bad_date(files, "orders_003.csv", [5], bad=5)
    assert cli(config, "sync").returncode == 1
    new = [letter for letter in _letters(config) if letter["id"] not in before]
    assert [letter["location"] for letter in new] == ["orders_003.csv:2"] and new[0]["id"] > max(before)


def test_letters_naming_no_order_stand_after_the_fix_until_dlq_retry_reads_it(tmp_path: Path, sandbox) -> None:
    # A header without order_number and a row without its number: fixed and synced, the orders go out, and
    # the letters stand (a clean read of a file of that name may be the next export, not the fix) until
    # `dlq retry` reads the fixed files again
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    header = write_orders(files, "orders_001.csv", [1])
    header.write_text(header.read_text().replace("order_number,", "order_no,", 1))
    row = write_orders(files, "orders_002.csv", [2])
    row.write_text(row.read_text().replace("\n2,#2,", "\n,#2,", 1))
    parcel = write_fulfillments(files, "fulfillments_001.csv", [",TR7,DHL,,2026-11-21T10:00:00Z,,"])
    assert cli(config, "sync").returncode == 1
    letters = _letters(config)
    assert sorted(letter["location"] for letter in letters) == ["fulfillments_001.csv:2", "orders_001.csv:1", "orders_002.csv:2"]
    assert all(letter["order"] is None and "`karla-connector dlq retry ID`" in letter["reason"] for letter in letters)
    write_orders(files, "orders_001.csv", [1])
    write_orders(files, "orders_002.csv", [2])
    parcel.write_text(parcel.read_text().replace("\n,TR7,", "\n2,TR7,"))
    synced = cli(config, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert {"1", "2"} <= set(sandbox.orders(SLUG)) and sandbox.orders(SLUG)["2"]["trackings"]
    assert [letter["id"] for letter in _letters(config)] == [letter["id"] for letter in letters]
    retried = cli(config, "dlq", "retry", *(str(letter["id"]) for letter in letters))
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert _letters(config) == []


def test_a_file_still_bad_keeps_its_letter_and_its_id(tmp_path: Path, sandbox) -> None:
    # the file changed but its row is still without its number: the letter stays (refreshed, same id);
    # the same content under a new mtime is not read again, and its letter stands too
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    path = write_orders(files, "orders_001.csv", [1, 2])
    path.write_text(path.read_text().replace("\n2,#2,", "\n,#2,", 1))
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    path.write_text(path.read_text().replace("Torstraße 2,", "Torstraße 3,"))  # order 1 changed; the row still bad
    assert cli(config, "sync").returncode == 1 and "Torstraße 3" in str(sandbox.orders(SLUG)["1"])
    assert [(x["id"], x["location"]) for x in _letters(config)] == [(letter["id"], "orders_001.csv:4")]
    os.utime(path, (path.stat().st_mtime + 60, path.stat().st_mtime + 60))
    cli(config, "sync")
    assert [x["id"] for x in _letters(config)] == [letter["id"]]


def test_a_parcel_row_without_its_numbers_says_what_to_do(tmp_path: Path, sandbox) -> None:
    # without its tracking number, fixed and uploaded as told, the letter never cleared (it names no parcel)
    # and no message said so; without its order number, the letter read "(this row of order  was not sent"
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    write_orders(files, "orders_001.csv", [1])
    write_fulfillments(files, "fulfillments_001.csv", ["1,,DHL,,2026-11-21T10:00:00Z,,", ",TR2,DHL,,2026-11-21T10:00:00Z,,"])
    assert cli(config, "sync").returncode == 1
    tracking, order = _letters(config)
    assert tracking["order"] == "1" and "`karla-connector dlq drop ID` once the parcel is in Karla" in tracking["reason"]
    assert order["order"] is None and "order  " not in order["reason"]
    assert order["reason"].endswith("(this row was not sent: fix the row and upload the file again, then run "
                                    "`karla-connector dlq retry ID`: it reads the file again, and no other read clears "
                                    "this letter, which names no order; or `karla-connector dlq drop ID` once the "
                                    "parcel is in Karla)")


def test_dlq_retry_exits_2_when_any_id_does_not_exist_and_refuses_ids_with_all(tmp_path: Path, sandbox) -> None:
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    _bad_date(files, "orders_001.csv", [1], bad=1)
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    retried = cli(config, "dlq", "retry", str(letter["id"]), "999")
    assert "no dead letter with id 999" in retried.stdout and retried.returncode == 2, retried.stdout + retried.stderr
    both = cli(config, "dlq", "retry", "--all", str(letter["id"]))
    assert both.returncode == 2 and "not both" in both.stderr
    assert [x["id"] for x in _letters(config)] == [letter["id"]]


def test_karlas_letter_of_a_parcel_names_the_parcels_line(tmp_path: Path, sandbox) -> None:
    # TRB is on line 3: the letter said line 2, TRA's
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    write_orders(files, "orders_001.csv", [1])
    assert cli(config, "sync").returncode == 0
    write_fulfillments(files, "fulfillments_001.csv", ["1,TRA,DHL,,2026-11-21T10:00:00Z,,", "1,TRB,DHL,,2026-11-21T10:00:00Z,,"])
    sandbox.fail_next(422, body=error("shipment_exists", "tracking TRB belongs to another order", [
        {"loc": ["body", 0, "trackings", 1, "tracking_number"], "msg": "TRB belongs to another order", "type": "shipment_exists"}]))
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    assert "fulfillments_001.csv:3" in letter["location"] and "TRB" in json.dumps(letter)
