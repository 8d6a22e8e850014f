"""A letter that names no order (a header without a required column, a row without its order number) stands
until the merchant acts (found by review diff5): the next export under the same name cleared it, though
its row was never fixed or sent. `dlq retry ID` reads the fixed file again and clears it; a file still in
``error_folder`` keeps it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SLUG, cli, write_config, write_fulfillments, write_orders


def _letters(config: Path) -> list[dict]:
    listed = cli(config, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _no_number(path: Path, number: int) -> Path:
    """Order ``number``'s first row without its order number."""
    path.write_text(path.read_text().replace(f"\n{number},#{number},", f"\n,#{number},", 1))
    return path


def test_a_daily_export_reusing_the_name_keeps_yesterdays_parcel_letter(tmp_path: Path, sandbox) -> None:
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    write_orders(files, "orders_001.csv", [1, 2])
    write_fulfillments(files, "fulfillments.csv", ["1,TR1,DHL,,2026-11-21T10:00:00Z,,", ",TR7,DHL,,2026-11-21T10:00:00Z,,"])
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    assert letter["location"] == "fulfillments.csv:3" and "`karla-connector dlq retry ID`" in letter["reason"]
    assert letter["reason"].endswith("`karla-connector dlq drop ID` once the parcel is in Karla)")
    write_fulfillments(files, "fulfillments.csv", ["1,TR3,DHL,,2026-11-22T10:00:00Z,,"])  # next day, same name
    assert cli(config, "sync").returncode == 0
    assert [x["id"] for x in _letters(config)] == [letter["id"]]  # TR7 never reached Karla
    assert "TR3" in json.dumps(sandbox.orders(SLUG)["1"]) and "TR7" not in json.dumps(sandbox.orders(SLUG))


def test_a_daily_export_reusing_the_name_keeps_yesterdays_header_letter(tmp_path: Path, sandbox) -> None:
    config, files = write_config(tmp_path, sandbox.url), tmp_path / "files"
    path = write_orders(files, "orders.csv", [1])
    path.write_text(path.read_text().replace("order_number,", "order_no,", 1))
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    write_orders(files, "orders.csv", [2])
    assert cli(config, "sync").returncode == 0
    assert sorted(sandbox.orders(SLUG)) == ["2"]
    assert [x["id"] for x in _letters(config)] == [letter["id"]]  # order 1 was never sent


def test_a_file_in_the_error_folder_keeps_its_letter_until_it_is_fixed_and_retried(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive", "error_folder": "error"})
    files = tmp_path / "files"
    _no_number(write_orders(files, "orders.csv", [1, 2]), 2)
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    assert "move it back into the source folder before dlq retry" in letter["reason"]
    write_orders(files, "orders.csv", [3])  # the next export, same name
    assert cli(config, "sync").returncode == 0
    assert [x["id"] for x in _letters(config)] == [letter["id"]], "the file in error/ still holds the bad row"
    kept = cli(config, "dlq", "retry", str(letter["id"]))  # not moved back yet: nothing read it again
    assert kept.returncode == 0 and "kept 1 letter(s)" in kept.stdout, kept.stdout + kept.stderr
    assert [x["id"] for x in _letters(config)] == [letter["id"]]
    write_orders(files, "orders.csv", [1, 2])  # fixed, and back in the source folder
    (files / "error" / "orders.csv").unlink()
    retried = cli(config, "dlq", "retry", str(letter["id"]))
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert _letters(config) == [] and {"1", "2", "3"} <= set(sandbox.orders(SLUG))


def test_a_header_letter_stays_in_the_error_folder_and_clears_by_retry_once_moved_back(tmp_path: Path, sandbox) -> None:
    # the letter went at `dlq retry` though its file was still in error/: nothing had read it again
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive", "error_folder": "error"})
    files = tmp_path / "files"
    path = write_orders(files, "orders.csv", [1, 2])
    path.write_text(path.read_text().replace("shipping_zip_code,", "plz,", 1))
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    assert (files / "error" / "orders.csv").exists()
    assert letter["reason"].endswith("move it back into the source folder before dlq retry")
    kept = cli(config, "dlq", "retry", str(letter["id"]))
    assert kept.returncode == 0 and "kept 1 letter(s)" in kept.stdout, kept.stdout + kept.stderr
    assert [x["id"] for x in _letters(config)] == [letter["id"]] and sandbox.orders(SLUG) == {}
    (files / "error" / "orders.csv").rename(path)  # moved back as it was: still bad, refreshed, same id
    again = cli(config, "dlq", "retry", str(letter["id"]))
    assert again.returncode == 1 and [x["id"] for x in _letters(config)] == [letter["id"]], again.stdout
    write_orders(files, "orders.csv", [1, 2])  # fixed, back in the source folder
    (files / "error" / "orders.csv").unlink()
    retried = cli(config, "dlq", "retry", str(letter["id"]))
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert _letters(config) == [] and sorted(sandbox.orders(SLUG)) == ["1", "2"]


def _bad_header(files: Path) -> Path:
    path = write_orders(files, "orders.csv", [1, 2])
    path.write_text(path.read_text().replace("shipping_zip_code,", "plz,", 1))
    return path


def test_retry_keeps_the_letter_while_its_file_waits_in_error_and_a_read_export_has_the_name(tmp_path: Path, sandbox) -> None:
    # keep: the retry read today's export, already read by a sync, and cleared the letter (found by review last5)
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "keep", "error_folder": "error"})
    files = tmp_path / "files"
    _bad_header(files)
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    write_orders(files, "orders.csv", [3])  # the next export, same name
    assert cli(config, "sync").returncode == 0
    kept = cli(config, "dlq", "retry", str(letter["id"]))
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert f"kept letter {letter['id']} naming no order: its bad file still waits in error/orders.csv" in kept.stdout
    assert f"then `dlq retry` again (or `dlq drop {letter['id']}` once its orders are in Karla)" in kept.stdout
    assert [x["id"] for x in _letters(config)] == [letter["id"]] and (files / "error" / "orders.csv").exists()
    write_orders(files, "orders.csv", [1, 2])  # fixed, moved back over today's export
    (files / "error" / "orders.csv").unlink()
    assert cli(config, "dlq", "retry", str(letter["id"])).returncode == 0
    assert _letters(config) == [] and sorted(sandbox.orders(SLUG)) == ["1", "2", "3"]


def test_retry_keeps_the_letter_while_its_file_waits_in_error_and_a_new_export_has_the_name(tmp_path: Path, sandbox) -> None:
    # archive: a new export landed before the retry; read by it for the first time, it cleared the letter
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive", "error_folder": "error"})
    files = tmp_path / "files"
    _bad_header(files)
    assert cli(config, "sync").returncode == 1
    (letter,) = _letters(config)
    write_orders(files, "orders.csv", [3])  # lands before the next timer run
    kept = cli(config, "dlq", "retry", str(letter["id"]))
    assert kept.returncode == 0 and "still waits in error/orders.csv" in kept.stdout, kept.stdout + kept.stderr
    assert [x["id"] for x in _letters(config)] == [letter["id"]] and sorted(sandbox.orders(SLUG)) == ["3"]

