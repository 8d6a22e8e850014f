"""``dlq retry`` and the dead-letter lifecycle: nothing is lost, nothing older overwrites newer data."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import httpx
from rich.console import Console

from connector.app import Connector, ExitCode
from connector.dlq import retry_dead_letters
from connector.settings import load_settings
from connector.engine import digest
from state import DeadLetters, Outbox, Part
from tests.conftest import SLUG, write_config, write_fulfillments, write_orders


def letters(connector: Connector) -> list:
    with connector.db.read() as conn:
        return DeadLetters(conn).list()


def retry(config: Path, ids: list[int] | None = None) -> tuple[int, str]:
    buffer = io.StringIO()
    code = retry_dead_letters(load_settings(config), ids, Console(file=buffer, width=400))
    return code, buffer.getvalue()


def bad_date_file(files: Path, encoding: str = "utf-8") -> Path:
    """Orders 1 and 2 are fine; order 3's date cannot be read."""
    path = write_orders(files, "orders_001.csv", [1, 2, 3])
    text = path.read_text(encoding="utf-8").replace("3,#3,2026-11-20T09:15:00+01:00", "3,#3,yesterday")
    path.write_text(text, encoding=encoding)
    return path


def test_a_fixed_file_clears_its_letter_when_the_order_reads_cleanly(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    path = bad_date_file(tmp_path / "files")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (letter,) = letters(connector)
    assert letter.order_key == "3" and letter.location == "orders_001.csv:6" and "yesterday" in letter.reason
    write_orders(path.parent, path.name, [1, 2, 3])  # the merchant uploads the corrected export
    assert connector.sync().exit_code == ExitCode.OK
    assert letters(connector) == [] and set(sandbox.orders(SLUG)) == {"1", "2", "3"}
    connector.close()


def test_retry_rereads_the_file_so_a_fixed_setting_takes_effect(tmp_path: Path, sandbox) -> None:
    """The file is cp1252; read as UTF-8 its umlaut row is a dead letter. Fix the setting, retry: delivered."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, source={"encoding": "utf-8"})
    write_orders(files, "orders_001.csv", [1, 2])
    (files / "orders_001.csv").write_bytes((files / "orders_001.csv").read_text(encoding="utf-8")
                                           .replace("Nováková", "Müller").encode("cp1252"))
    connector = Connector(load_settings(config))
    connector.sync()
    assert {letter.order_key for letter in letters(connector)} == {"1", "2"}
    connector.close()
    config.write_text(config.read_text().replace('encoding = "utf-8"', 'encoding = "cp1252"'))
    code, said = retry(config)
    assert code == ExitCode.OK, said
    assert "read 4 letter(s)' rows again" in said  # one per row: both rows of each order hold the byte
    connector = Connector(load_settings(config))
    assert letters(connector) == [] and sandbox.orders(SLUG)["1"]["address"]["name"] == "Jana Müller"
    connector.close()


def test_retry_of_a_row_still_bad_keeps_its_letter_refreshed(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    bad_date_file(tmp_path / "files")
    connector = Connector(load_settings(config))
    connector.sync()
    (old,) = letters(connector)
    connector.close()
    code, said = retry(config)
    assert code == ExitCode.DEAD_LETTERS, said  # dead-lettered again: not a success
    assert "read 1 letter(s)' rows again" in said
    connector = Connector(load_settings(config))
    (new,) = letters(connector)
    assert (new.id, new.order_key, new.location, new.reason) == (old.id, old.order_key, old.location, old.reason)
    assert new.created_at >= old.created_at
    assert set(sandbox.orders(SLUG)) == {"1", "2"}
    connector.close()


def test_full_syncs_of_a_bad_row_keep_one_letter(tmp_path: Path, sandbox) -> None:
    """The nightly full sync reads every kept file again: its bad rows must not pile up letters."""
    config = write_config(tmp_path, sandbox.url)
    bad_date_file(tmp_path / "files")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (first,) = letters(connector)
    for _ in range(2):
        assert connector.sync(full=True).exit_code == ExitCode.DEAD_LETTERS
    assert [letter.id for letter in letters(connector)] == [first.id]
    connector.close()


def test_retry_keeps_the_letter_when_its_file_is_gone(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source={"after_processing": "archive"})
    bad_date_file(tmp_path / "files")
    connector = Connector(load_settings(config))
    connector.sync()
    (old,) = letters(connector)
    connector.close()
    assert (tmp_path / "files" / "orders_001.csv").exists()  # a file with dead letters stays for dlq retry
    (tmp_path / "files" / "orders_001.csv").unlink()  # ... unless someone takes it away
    code, said = retry(config)
    assert code == ExitCode.OK and "kept 1 letter(s)" in said, said
    connector = Connector(load_settings(config))
    assert [letter.id for letter in letters(connector)] == [old.id]
    connector.close()


def test_retry_drops_a_karla_letter_whose_order_was_delivered_newer_since(tmp_path: Path, sandbox) -> None:
    """Karla refused order 6 (zip); the merchant fixed it in the export and it went out. Retrying the old
    letter must not send the old zip code over the new data."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url)
    write_orders(files, "orders_001.csv", [5, 6], zip_code="ABCDE")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS  # both refused: invalid German zip
    assert {letter.order_key for letter in letters(connector)} == {"5", "6"}
    write_orders(files, "orders_002.csv", [6])  # order 6 corrected, 5 not
    assert connector.sync().exit_code == ExitCode.OK
    assert [letter.order_key for letter in letters(connector)] == ["5"]  # 6's letter went with its fix
    connector.close()
    requests = len(sandbox.requests)
    code, said = retry(config)
    assert "queued 1 dead letter(s) again" in said, said
    assert code == ExitCode.DEAD_LETTERS  # order 5 is refused again: still a bad zip
    assert sandbox.orders(SLUG)["6"]["address"]["zip_code"] == "10119"
    (sent,) = sandbox.requests[requests:]
    assert sent.items == 1
    connector = Connector(load_settings(config))
    assert [letter.order_key for letter in letters(connector)] == ["5"]
    connector.close()



def test_retry_clears_a_header_letter_once_that_file_reads(tmp_path: Path, sandbox) -> None:
    """A file whose header the config does not know is one letter (file:1). Fix the column mapping and
    retry: that same file is read and delivered, and its letter goes."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url)
    path = write_orders(files, "orders_001.csv", [1, 2])
    path.write_text(path.read_text().replace("order_number,", "Bestellnummer,", 1))
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (letter,) = letters(connector)
    assert letter.location == "orders_001.csv:1" and letter.payload["file"] == "orders_001.csv"
    connector.close()
    config.write_text(config.read_text() + '\n[sources.warehouse.columns]\norder_number = "Bestellnummer"\n')
    code, said = retry(config)
    assert code == ExitCode.OK, said
    assert set(sandbox.orders(SLUG)) == {"1", "2"}
    connector = Connector(load_settings(config))
    assert letters(connector) == []
    connector.close()


def test_a_record_refused_again_keeps_one_letter(tmp_path: Path, sandbox) -> None:
    """The nightly full sync sends an unchanged refused order again (Karla may accept it by now); refused
    again, its letter is refreshed, not doubled."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url)
    write_orders(files, "orders_001.csv", [5], zip_code="ABCDE")  # refused: not a German zip code
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (first,) = letters(connector)
    assert connector.sync(full=True).exit_code == ExitCode.DEAD_LETTERS
    (again,) = letters(connector)
    assert again.id == first.id and again.created_at >= first.created_at
    connector.close()


def test_retry_all_sends_the_newest_of_two_refused_versions(tmp_path: Path, sandbox) -> None:
    """Karla refused version A of an order, then version B. Once Karla accepts it again, retrying every
    letter must leave B in Karla: A is superseded by B, not the other way round."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url)
    sandbox.refuse_order("6", 422, "invalid_payload")  # refused whatever it holds, for now
    write_orders(files, "orders_001.csv", [6], zip_code="10119")  # version A
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    write_orders(files, "orders_002.csv", [6], zip_code="80331")  # version B, newer
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    assert [letter.payload["order"]["address"]["zip_code"] for letter in letters(connector)] == ["10119", "80331"]
    connector.close()
    sandbox.heal()
    code, said = retry(config)
    assert code == ExitCode.OK, said
    assert "superseded" in said
    assert sandbox.orders(SLUG)["6"]["address"]["zip_code"] == "80331"
    connector = Connector(load_settings(config))
    assert letters(connector) == []
    connector.close()


def _trackings(sandbox, order: str) -> list[str]:
    return [t["tracking_number"] for t in sandbox.orders(SLUG)[order]["trackings"]]


def test_a_later_export_of_the_same_name_clears_only_the_parcels_it_carries(tmp_path: Path, sandbox) -> None:
    """A daily export reuses its name. Tomorrow's good parcel for an order must not clear the letter of
    today's bad parcel for the same order; the corrected parcel does."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url)
    write_orders(files, "orders_001.csv", [1])
    write_fulfillments(files, "fulfillments.csv", ["1,T1,DHL,,yesterday,,"])  # day 1: T1's date is unreadable
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    (letter,) = letters(connector)
    assert letter.location == "fulfillments.csv:2" and "yesterday" in letter.reason

    write_fulfillments(files, "fulfillments.csv", ["1,T2,DHL,,2026-11-22T10:00:00Z,,"])  # day 2: only T2, fine
    os.utime(files / "fulfillments.csv", (1_900_000_000, 1_900_000_000))
    assert connector.sync().exit_code == ExitCode.OK
    assert _trackings(sandbox, "1") == ["T2"]
    assert [x.id for x in letters(connector)] == [letter.id]  # T1 was never sent: its letter stays

    write_fulfillments(files, "fulfillments.csv", ["1,T1,DHL,,2026-11-21T10:00:00Z,,"])  # T1 corrected, uploaded again
    os.utime(files / "fulfillments.csv", (1_900_000_100, 1_900_000_100))
    assert connector.sync().exit_code == ExitCode.OK
    assert sorted(_trackings(sandbox, "1")) == ["T1", "T2"]
    assert letters(connector) == []
    connector.close()


def test_a_bad_parcel_does_not_hold_back_its_good_sibling(tmp_path: Path, sandbox) -> None:
    """Each parcel stands alone: the good one goes at once, the bad one is a letter naming it, and the
    corrected one (in a later export of the same name that carries only it) clears that letter."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url)
    write_orders(files, "orders_001.csv", [1])
    write_fulfillments(files, "fulfillments.csv", ["1,T1,DHL,,yesterday,,", "1,T3,DHL,,2026-11-21T10:00:00Z,,"])
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    assert _trackings(sandbox, "1") == ["T3"]
    (letter,) = letters(connector)
    assert letter.location == "fulfillments.csv:2" and "parcel T1 of order 1 not sent" in letter.reason
    write_fulfillments(files, "fulfillments.csv", ["1,T1,DHL,,2026-11-21T09:00:00Z,,"])
    os.utime(files / "fulfillments.csv", (1_900_000_000, 1_900_000_000))
    assert connector.sync().exit_code == ExitCode.OK
    assert sorted(_trackings(sandbox, "1")) == ["T1", "T3"] and letters(connector) == []
    connector.close()


def test_retry_keeps_a_letter_whose_file_name_now_holds_other_rows(tmp_path: Path, sandbox) -> None:
    """Retrying reads the file of that name again; when today's export no longer holds the bad row,
    nothing read it again, so its letter stays."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url)
    write_orders(files, "orders_001.csv", [1, 2])
    write_fulfillments(files, "fulfillments.csv", ["1,T1,DHL,,yesterday,,"])  # day 1: bad row
    connector = Connector(load_settings(config))
    connector.sync()
    write_fulfillments(files, "fulfillments.csv", ["2,T9,DHL,,2026-11-22T10:00:00Z,,"])  # day 2: another order
    os.utime(files / "fulfillments.csv", (1_900_000_000, 1_900_000_000))
    connector.sync()
    (letter,) = letters(connector)
    connector.close()
    code, said = retry(config)
    assert code == ExitCode.OK, said
    assert "kept 1 letter(s)" in said
    connector = Connector(load_settings(config))
    assert [x.id for x in letters(connector)] == [letter.id]
    assert _trackings(sandbox, "2") == ["T9"] and _trackings(sandbox, "1") == []
    connector.close()


def test_retrying_the_older_of_two_refused_versions_alone_sends_nothing_old(tmp_path: Path, sandbox) -> None:
    """Retrying only the letter of version A, while version B's letter waits: A is superseded by B."""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url)
    sandbox.refuse_order("6", 422, "invalid_payload")
    write_orders(files, "orders_001.csv", [6], zip_code="10119")  # version A
    connector = Connector(load_settings(config))
    connector.sync()
    write_orders(files, "orders_002.csv", [6], zip_code="80331")  # version B
    connector.sync()
    older, newer = letters(connector)
    connector.close()
    sandbox.heal()
    requests = len(sandbox.requests)
    code, said = retry(config, [older.id])
    assert "dropped 1 superseded" in said, said
    assert len(sandbox.requests) == requests and "6" not in sandbox.orders(SLUG)
    connector = Connector(load_settings(config))
    assert [letter.id for letter in letters(connector)] == [newer.id]
    connector.close()


def test_retry_of_an_unknown_id_says_so(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    bad_date_file(tmp_path / "files")
    connector = Connector(load_settings(config))
    connector.sync()
    connector.close()
    code, said = retry(config, [999])
    assert code == ExitCode.CONFIG and "no dead letter with id 999" in said


def test_looking_at_a_state_file_that_is_not_there_does_not_create_it(tmp_path: Path, sandbox) -> None:
    """``status`` or ``dlq list`` against a wrong [state].path must not report an empty store."""
    from tests.conftest import cli

    config = write_config(tmp_path, sandbox.url)
    for command in (["status"], ["dlq", "list"], ["dlq", "retry", "--all"]):
        result = cli(config, *command)
        assert result.returncode == ExitCode.CONFIG and "does not exist" in result.stderr, (command, result.stderr)
    assert not (tmp_path / "state.db").exists()


def test_a_letter_stays_until_every_part_it_holds_went_out_newer(tmp_path: Path, sandbox) -> None:
    """Order 5 and its parcel were refused together (Karla named no field, so the whole item). The fixed
    order goes out alone: the letter still holds the only copy of the parcel, so it stays; ``dlq retry``
    sends the parcel, not the old order. (A refusal naming the order's field letters the order alone:
    tests/integration/test_karla_refusals.py.)"""
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url)
    write_orders(files, "orders_001.csv", [5], zip_code="80331")
    write_fulfillments(files, "fulfillments_001.csv", ["5,T5,DHL,,,,"])
    sandbox.refuse_order("5", 422, "zip_code_invalid")
    connector = Connector(load_settings(config))
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS
    sandbox.heal()
    write_orders(files, "orders_002.csv", [5])  # fixed at the source; the parcel file is not read again
    assert connector.sync().exit_code == ExitCode.OK
    (letter,) = letters(connector)
    assert [t["tracking_number"] for t in letter.payload["trackings"]] == ["T5"]
    connector.close()
    code, said = retry(config)
    assert code == ExitCode.OK and "dropped" not in said, said
    assert sandbox.orders(SLUG)["5"]["address"]["zip_code"] == "10119" and _trackings(sandbox, "5") == ["T5"]
    connector = Connector(load_settings(config))
    assert letters(connector) == []
    connector.close()


class QueuesNewerWhileOnTheWire(httpx.HTTPTransport):
    """While the first bulk write is on the wire, a reader queues a newer, valid version of its order."""

    def __init__(self) -> None:
        super().__init__()
        self.connector: Connector | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.connector is not None and request.url.path.endswith("/bulk"):
            connector, self.connector = self.connector, None
            (item,) = json.loads(request.read())
            item["order"]["address"]["zip_code"] = "10119"
            payload = json.dumps(item["order"])
            part = Part(SLUG, item["id"], "order_number", "order", payload, digest(payload), "warehouse", "orders", None)
            with connector.db.transaction() as conn:
                Outbox(conn).enqueue([part], connector.now())
        return super().handle_request(request)


def test_retry_does_not_send_a_refused_version_over_one_queued_while_it_was_on_the_wire(tmp_path: Path, sandbox) -> None:
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url)
    write_orders(files, "orders_001.csv", [6], zip_code="ABCDE")
    transport = QueuesNewerWhileOnTheWire()
    connector = Connector(load_settings(config), transport=transport)
    transport.connector = connector
    assert connector.sync().exit_code == ExitCode.DEAD_LETTERS  # refused, the fixed version queued meanwhile
    connector.close()
    code, said = retry(config)
    assert "superseded" in said, said
    assert sandbox.orders(SLUG)["6"]["address"]["zip_code"] == "10119"


BAD_DATE = "7,#7,not-a-date,c7@example.com,EUR,24.90,4.90,K,Str 1,10119,Berlin,DE,SKU-7-0,A,1,10.00"


def _letter_keys(connector: Connector) -> list[str | None]:
    with connector.db.read() as conn:
        return [letter.order_key for letter in DeadLetters(conn).list()]


def test_a_newer_export_read_in_the_same_run_clears_the_letter_and_the_run_succeeds(tmp_path: Path, sandbox) -> None:
    """Found by a crash fuzz: whether a run cleared letters was decided once, at its start (no letters then:
    none of its own cleared), so a backlog's bad row stayed a letter though a later export fixed it; and
    nightly full syncs of kept files brought it back every other night, each exiting 1."""
    from tests.conftest import ORDER_HEADER

    connector = Connector(load_settings(write_config(tmp_path, sandbox.url)), sleep=lambda _: None)
    files = tmp_path / "files"
    (files / "orders_001.csv").write_text(f"{ORDER_HEADER}\n{BAD_DATE}\n", encoding="utf-8")
    write_orders(files, "orders_002.csv", [7])  # the ERP's correction, read in the same run
    assert connector.sync().exit_code == ExitCode.OK
    assert _letter_keys(connector) == [] and "7" in sandbox.orders(SLUG)
    seen = [(connector.sync(full=True).exit_code, _letter_keys(connector)) for _ in range(3)]
    assert seen == [(ExitCode.OK, [])] * 3


def test_a_clock_stepped_back_mid_run_does_not_hide_the_runs_letters(tmp_path: Path, sandbox) -> None:
    """The run's letters are dated by their page: a wall clock stepped back after the run started (an NTP
    step) dated them before its start, and the run counted 0 rejected and exited 0 (found by a review)."""
    from datetime import datetime, timedelta, timezone

    base, calls = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc), [0]

    def clock() -> datetime:
        calls[0] += 1
        return base if calls[0] <= 2 else base - timedelta(seconds=2)  # the run's start, then stepped back

    connector = Connector(load_settings(write_config(tmp_path, sandbox.url)), sleep=lambda _: None)
    connector.clock = clock
    path = write_orders(tmp_path / "files", "orders_001.csv", [1, 2, 3])
    path.write_text(path.read_text().replace("3,#3,2026-11-20T09:15:00+01:00", "3,#3,yesterday"))
    report = connector.sync()
    assert _letter_keys(connector) == ["3"]
    assert (report.sources["warehouse"].rejected, report.exit_code) == (1, ExitCode.DEAD_LETTERS)


def test_a_stopped_run_counts_only_the_letters_it_leaves(tmp_path: Path, sandbox) -> None:
    from tests.conftest import ORDER_HEADER

    connector = Connector(load_settings(write_config(tmp_path, sandbox.url)), sleep=lambda _: None)
    files = tmp_path / "files"
    (files / "orders_001.csv").write_text(f"{ORDER_HEADER}\n{BAD_DATE}\n", encoding="utf-8")
    write_orders(files, "orders_002.csv", [7])
    pages = [0]

    def stop() -> bool:
        pages[0] += 1
        return pages[0] >= 2  # stopped right after orders_002.csv's page, which cleared 001's letter

    counts = connector.sync_one(connector.sources["warehouse"], stop=stop)
    assert _letter_keys(connector) == [] and counts.rejected == 0
    assert connector.status()["sources"]["warehouse"]["last_run"]["rejected"] == 0
