"""The csv adapter on real files: mapping, grouping, encodings, bad rows, fingerprints, resume, memory."""

from __future__ import annotations

import json
import logging
import os
import tracemalloc
from datetime import datetime, timedelta, timezone
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.base import AdapterContext, FileMark, Page, Record
from adapters.csv import CsvAdapter, CsvConfig
from adapters.csv.grouping import is_grouped
from adapters.csv.local import LocalFolder
from adapters.testing import AdapterContract
from connector.errors import ConfigError
from connector.karla.models import dump
from connector.registry import validate_source

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
HEADER = "order_number,order_name,email,shipping_name,shipping_zip_code,shipping_country_code,sku,product_title,quantity,price"


def adapter(folder: Path, seen: dict | None = None, clock=lambda: NOW, full: bool = False, **config: object) -> CsvAdapter:
    """``seen`` maps (path, sha256) to the FileMark committed for it, as the engine's state does."""
    seen = seen if seen is not None else {}
    context = AdapterContext(source="t", clock=clock, is_seen=lambda m: seen.get((m.path, m.sha256)), full_sync=full,
                             was_read=lambda path, size, mtime: next((m for m in seen.values() if (m.path, m.size, m.mtime) == (path, size, mtime)), None))
    return CsvAdapter("t", CsvConfig(url=f"file://{folder}", **{"settle_seconds": 0, **config}), context)  # files written just now


def records(pages: list[Page]) -> dict[str, Record]:
    """By order, an order's parcels (a record each) together."""
    found: dict[str, Record] = {}
    for r in (r for p in pages for r in p.records):
        found[r.key] = replace(found[r.key], trackings=[*found[r.key].trackings, *r.trackings]) if r.key in found else r
    return found


def write(path: Path, text: str, encoding: str = "utf-8", mtime: float | None = None) -> Path:
    path.write_bytes(text.encode(encoding))
    stamp = mtime if mtime is not None else (NOW - timedelta(hours=1)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_realistic_orders_and_parcels_map_field_by_field(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv",
          "order_number,order_name,order_placed_at,email,currency,total_order_price,shipping_price,shipping_name,shipping_company,"
          "shipping_address_line_1,shipping_address_line_2,shipping_zip_code,shipping_city,shipping_province_code,shipping_country_code,"
          "shipping_phone,expected_number_of_shipments,sku,product_title,quantity,price,image_url\n"
          '7,#7,2026-11-20T09:15:00+01:00,zoë@example.com,EUR,"1.059,90",4.90,Zoë Łukasiewicz,ACME GmbH,Torstraße 1,2. OG,10119,Berlin,BE,de,'
          "+49 30 1,2,A-1,Stiefel „Alp“,1,999.00,https://img.example/a.png\n"
          "8,#8,2026-11-21,b@example.com,EUR,10,0,Bo,,Weg 2,,80331,München,,DE,,,B-1,Buch,1,10,\n"
          "7,,,,,,,,,,,,,,,,,A-2,Socken,2,\"30,00\",\n")
    write(tmp_path / "fulfillments_1.csv",
          "order_number,tracking_number,carrier,tracking_url,shipped_at,sku,quantity\n"
          "7,P1,Hermes,https://t/P1,21.11.2026 10:00,A-1,1\n7,P2,Kiala Express,,,A-2,2\n7,P2,,,,A-2b,1\n")
    a = adapter(tmp_path)
    orders = records(list(a.read("orders", None)))
    seven = dump(orders["7"].order)
    assert seven["order_name"] == "#7" and seven["email_id"] == "zoë@example.com" and seven["total_order_price"] == 1059.9
    assert seven["order_placed_at"] == "2026-11-20T09:15:00+01:00" and seven["expected_number_of_shipments"] == 2
    assert seven["address"] == {"zip_code": "10119", "name": "Zoë Łukasiewicz", "company": "ACME GmbH", "address_line_1": "Torstraße 1",
                                "address_line_2": "2. OG", "street": "Torstraße 1, 2. OG", "city": "Berlin", "province_code": "BE",
                                "country_code": "DE", "phone": "+49 30 1"}
    assert [(p["sku"], p["quantity"], p["price"]) for p in seven["products"]] == [("A-1", 1, 999.0), ("A-2", 2, 30.0)]
    assert seven["products"][0]["images"] == [{"src": "https://img.example/a.png"}]
    assert orders["7"].location == "orders_1.csv:2" and orders["8"].order.order_placed_at.year == 2026  # type: ignore[union-attr]
    parcels = records(list(a.read("fulfillments", None)))["7"].trackings
    p1, p2 = (dump(t) for t in parcels)
    assert p1["carrier_reference"] == "hrs" and p1["tracking_placed_at"] == "2026-11-21T10:00:00Z"
    assert p2["tracking_company"] == "Kiala Express" and [p["sku"] for p in p2["products"]] == ["A-2", "A-2b"]


def test_semicolon_decimal_comma_crlf_and_quoted_newline(tmp_path: Path) -> None:
    write(tmp_path / "orders_a.csv",
          'order_number;shipping_zip_code;product_title;price;quantity\r\n1;10119;"Zeile eins\r\nZeile zwei";12,50;1\r\n2;10119;X;3,5;2\r\n')
    got = records(list(adapter(tmp_path).read("orders", None)))
    assert got["1"].order.products[0].title == "Zeile eins\r\nZeile zwei" and got["1"].order.products[0].price == 12.5  # type: ignore[union-attr]
    assert got["2"].location == "orders_a.csv:4"  # the quoted newline moved the line count on


def test_cp1252_with_encoding_configured_and_without(tmp_path: Path) -> None:
    write(tmp_path / "orders_w.csv", f"{HEADER}\n1,#1,a@x.de,Jürgen Weiß,10119,DE,S,Größe,1,1\n2,#2,b@x.de,Ann,10119,DE,S,Hut,1,1\n", "cp1252")
    ok = records(list(adapter(tmp_path, encoding="cp1252").read("orders", None)))
    assert ok["1"].order.address.name == "Jürgen Weiß"  # type: ignore[union-attr]
    pages = list(adapter(tmp_path).read("orders", None))  # utf-8 by default: line 2 is rejected, line 3 goes on
    assert set(records(pages)) == {"2"}
    (bad,) = [r for p in pages for r in p.rejected]
    assert bad.location == "orders_w.csv:2" and "not valid utf-8" in bad.reason


def test_bad_rows_are_rejected_with_file_line_and_the_rest_goes_on(tmp_path: Path) -> None:
    write(tmp_path / "orders_b.csv", f"{HEADER}\n1,#1,a@x.de,A,10119,DE,S,T,1,1\n,#x,,,,,,,,\n3,#3,c@x.de,C,10119,DE,S,T,zwei,1\n"
          "4,#4,d@x.de,D,,DE,S,T,1,1\n5,#5,e@x.de,E,10119,DE,S,T,1,1\n3,,,,,,,S2,1,1\n")
    pages = list(adapter(tmp_path).read("orders", None))
    assert set(records(pages)) == {"1", "5"}
    reasons = {r.location: r.reason for p in pages for r in p.rejected}
    assert "empty" in reasons["orders_b.csv:3"] and "order_number" in reasons["orders_b.csv:3"]
    assert "quantity 'zwei' is not a number" in reasons["orders_b.csv:4"] and "order 3 not sent" in reasons["orders_b.csv:4"]
    assert "zip_code" in reasons["orders_b.csv:5"]


def test_missing_required_column_rejects_the_file_once(tmp_path: Path) -> None:
    write(tmp_path / "fulfillments_x.csv", "order_number,carrier\n1,DHL\n")
    (page,) = list(adapter(tmp_path).read("fulfillments", None))
    assert page.records == [] and "missing required column tracking_number" in page.rejected[0].reason
    assert page.done_files and page.done_files[0].rejected == 1


def test_seen_files_are_skipped_changed_files_read_again_full_sync_reads_all(tmp_path: Path) -> None:
    path = write(tmp_path / "orders_1.csv", f"{HEADER}\n1,#1,a@x.de,A,10119,DE,S,T,1,1\n")
    pages = list(adapter(tmp_path).read("orders", None))
    seen = {(m.path, m.sha256): m for p in pages for m in p.done_files}
    assert list(adapter(tmp_path, seen).read("orders", None)) == []
    assert records(list(adapter(tmp_path, seen, full=True).read("orders", None))).keys() == {"1"}
    write(path, f"{HEADER}\n1,#1,new@x.de,A,10119,DE,S,T,1,1\n")
    assert records(list(adapter(tmp_path, seen).read("orders", None)))["1"].order.email_id == "new@x.de"  # type: ignore[union-attr]


def test_partial_and_hidden_files_settle_time_and_done_markers(tmp_path: Path) -> None:
    body = f"{HEADER}\n1,#1,a@x.de,A,10119,DE,S,T,1,1\n"
    for name in (".orders_h.csv", "orders_p.csv.part", "orders_t.csv.tmp"):
        write(tmp_path / name, body)
    write(tmp_path / "orders_new.csv", body, mtime=(NOW - timedelta(seconds=5)).timestamp())
    assert list(adapter(tmp_path, settle_seconds=30).read("orders", None)) == []
    later = lambda: NOW + timedelta(seconds=60)  # noqa: E731
    assert records(list(adapter(tmp_path, clock=later, settle_seconds=30).read("orders", None))).keys() == {"1"}
    assert list(adapter(tmp_path, done_suffix=".done").read("orders", None)) == []
    write(tmp_path / "orders_new.csv.done", "")
    assert records(list(adapter(tmp_path, done_suffix=".done").read("orders", None))).keys() == {"1"}


def _lines(scattered: bool) -> list[str]:
    """300 orders of two rows: each order's rows 300 lines apart, or together and sorted by order number."""
    pairs = [(n, i) for i in range(2) for n in range(1, 301)] if scattered else [(n, i) for n in range(1, 301) for i in range(2)]
    return [f"{n},#{n},a@x.de,A,10119,DE,S{n}-{i},T,1,1" for n, i in pairs]


@pytest.mark.parametrize(("bucket_bytes", "scattered"), [(10_000_000, True), (10_000, True), (10_000, False)],
                         ids=["in-memory", "buckets", "grouped-file"])
def test_non_adjacent_rows_grouped_and_resume_from_every_page(tmp_path: Path, bucket_bytes: int, scattered: bool) -> None:
    lines = _lines(scattered)
    write(tmp_path / "orders_big.csv", HEADER + "\n" + "\n".join(lines) + "\n")
    pages = list(adapter(tmp_path, page_size=40, bucket_bytes=bucket_bytes).read("orders", None))
    everything = records(pages)
    assert len(everything) == 300 and all(len(r.order.products) == 2 for r in everything.values())  # type: ignore[union-attr]
    for index, page in enumerate(pages[:-1]):
        resumed = records(list(adapter(tmp_path, page_size=40, bucket_bytes=bucket_bytes).read("orders", page.cursor)))
        before = {r.key for p in pages[: index + 1] for r in p.records}
        assert before | set(resumed) == set(everything) and not before & set(resumed)


def _peak(folder: Path, bucket_bytes: int) -> tuple[int, int]:
    a = adapter(folder, bucket_bytes=bucket_bytes, page_size=500)
    tracemalloc.start()
    count = sum(len(page.records) for page in a.read("orders", None))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return count, peak


def _big_file(path: Path, scattered: bool) -> None:
    """15k orders of two rows each; ``scattered`` lists every order's second row in a second half."""
    with path.open("w") as f:
        f.write(HEADER + "\n")
        for half in range(2 if scattered else 1):
            for n in range(15_000):
                for item in (half,) if scattered else (0, 1):
                    f.write(f"{n},#{n},kunde{n}@example.com,Name {n},10119,DE,SKU-{n}-{item},Produkt {n},1,9.99\n")


def test_large_scattered_file_is_grouped_in_bounded_memory(tmp_path: Path) -> None:
    """Memory follows the bucket size, not the file size (the 1M-order proof is in `make bench`)."""
    _big_file(tmp_path / "orders_huge.csv", scattered=True)
    whole = _peak(tmp_path, bucket_bytes=100_000_000)
    bucketed = _peak(tmp_path, bucket_bytes=200_000)
    assert whole[0] == bucketed[0] == 15_000
    assert bucketed[1] < whole[1] / 2.5, f"bucketed peak {bucketed[1]} vs in-memory {whole[1]}"


def test_a_file_grouped_by_order_streams_whatever_bucket_bytes_says(tmp_path: Path) -> None:
    _big_file(tmp_path / "orders_huge.csv", scattered=True)
    scattered_whole = _peak(tmp_path, bucket_bytes=100_000_000)
    _big_file(tmp_path / "orders_huge.csv", scattered=False)
    grouped = _peak(tmp_path, bucket_bytes=100_000_000)  # large enough to hold the file, yet not needed
    assert grouped[0] == 15_000
    assert grouped[1] < scattered_whole[1] / 2.5, f"grouped peak {grouped[1]} vs in-memory {scattered_whole[1]}"


def test_is_grouped_accepts_sorted_keys_in_text_or_number_order_only() -> None:
    assert is_grouped(["1", "1", "2", "10", "10", "11"])  # numeric order
    assert is_grouped(["A-1", "A-1", "A-10", "A-2"])  # text order
    assert is_grouped([]) and is_grouped(["x", "x"])
    assert not is_grouped(["1", "2", "1"])  # 1 comes back
    assert not is_grouped(["2", "10", "1"])  # neither order
    assert not is_grouped(["10", "9", "10"])


def test_a_cursor_from_another_layout_restarts_the_file_instead_of_skipping(tmp_path: Path) -> None:
    write(tmp_path / "orders_big.csv", HEADER + "\n" + "\n".join(_lines(scattered=True)) + "\n")
    pages = list(adapter(tmp_path, page_size=40, bucket_bytes=10_000).read("orders", None))
    middle = pages[3].cursor  # written while the file was read in buckets
    resumed = records(list(adapter(tmp_path, page_size=40, bucket_bytes=10_000_000).read("orders", middle)))
    assert len(resumed) == 300  # bucket_bytes changed: positions mean something else, so read it all again


def test_archive_after_commit_and_error_folder(tmp_path: Path) -> None:
    write(tmp_path / "orders_ok.csv", f"{HEADER}\n1,#1,a@x.de,A,10119,DE,S,T,1,1\n")
    write(tmp_path / "orders_bad.csv", f"{HEADER}\n2,#2,a@x.de,A,,DE,S,T,1,1\n")
    a = adapter(tmp_path, after_processing="archive", error_folder="error")
    reader = a.read("orders", None)
    next(reader)
    assert (tmp_path / "orders_bad.csv").exists()  # not moved before the engine committed its page
    list(reader)
    assert (tmp_path / "error" / "orders_bad.csv").exists() and (tmp_path / "archive" / "orders_ok.csv").exists()
    with pytest.raises(Exception, match="inside the source folder"):
        CsvAdapter("t", CsvConfig(url=f"file://{tmp_path}", after_processing="archive", archive_folder="../out"),
                   AdapterContext(source="t")).files.move("x", "../out")


class TestCsvContract(AdapterContract):
    expected = {"1": {"order": {"order_number": "1", "address": {"zip_code": "10119"}}}}

    @pytest.fixture(autouse=True)
    def _files(self, tmp_path: Path) -> None:
        self.folder = tmp_path
        write(tmp_path / "orders_1.csv", f"{HEADER}\n" + "\n".join(f"{n},#{n},a@x.de,A,10119,DE,S,T,1,1" for n in range(1, 8)) + "\n")
        write(tmp_path / "fulfillments_1.csv", "order_number,tracking_number,carrier\n1,T1,DHL\n2,T2,UPS\n")

    def make_adapter(self, context: AdapterContext) -> CsvAdapter:
        return CsvAdapter("t", CsvConfig(url=f"file://{self.folder}", page_size=3), context)

    def make_bad_adapter(self, context: AdapterContext) -> CsvAdapter:
        return CsvAdapter("t", CsvConfig(url=f"file://{self.folder}/missing"), context)


_ = (json, FileMark)


def test_a_failed_move_is_logged_and_the_file_is_not_read_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "orders_1.csv", f"{HEADER}\n1,#1,a@x.de,A,10119,DE,S,T,1,1\n")
    (tmp_path / "archive").write_text("a file where the archive folder should be")
    seen: dict = {}
    logger = logging.getLogger("csv-test")
    context = AdapterContext(source="t", clock=lambda: NOW, is_seen=lambda m: seen.get((m.path, m.sha256)), log=logger)
    a = CsvAdapter("t", CsvConfig(url=f"file://{tmp_path}", after_processing="archive"), context)
    with caplog.at_level(logging.WARNING, logger="csv-test"):
        pages = list(a.read("orders", None))
        seen.update(((m.path, m.sha256), m) for p in pages for m in p.done_files)
        assert records(pages).keys() == {"1"} and "could not be moved" in caplog.text
        assert list(a.read("orders", pages[-1].cursor)) == []  # not reprocessed; the move is simply tried again
    assert caplog.text.count("could not be moved") == 2 and (tmp_path / "orders_1.csv").exists()


def test_carrier_overrides_must_name_karla_carriers(tmp_path: Path) -> None:
    from pydantic import ValidationError

    assert CsvConfig(url=f"file://{tmp_path}", carriers={"Paket Express": "dhlexp"}).carriers == {"Paket Express": "dhlexp"}
    with pytest.raises(ValidationError, match="not Karla carrier references: dhl_express"):
        CsvConfig(url=f"file://{tmp_path}", carriers={"DHL Express": "dhl_express"})


# -- files the csv module refuses, unbalanced quotes ------------------------------------------------------
ORDERS = "order_number,shipping_zip_code,sku,quantity,price"


def rejected(pages: list[Page]) -> dict[str, str]:
    return {r.location: r.reason for p in pages for r in p.rejected}


def test_cr_only_and_mixed_line_endings_are_lines(tmp_path: Path) -> None:
    write(tmp_path / "orders_mac.csv", f"{ORDERS}\r1,10119,A,1,1\r2,10119,\"two\rlines\",1,1\r3,10119,C,1,1\r")
    write(tmp_path / "orders_mixed.csv", f"{ORDERS}\r\n4,10119,D,1,1\r5,10119,E,1,1\n6,10119,F,1,1\r\n")
    pages = list(adapter(tmp_path).read("orders", None))
    got = records(pages)
    assert set(got) == {"1", "2", "3", "4", "5", "6"} and not rejected(pages)
    assert got["2"].order.products[0].sku == "two\rlines"  # type: ignore[union-attr]
    assert (got["3"].location, got["5"].location, got["6"].location) == ("orders_mac.csv:5", "orders_mixed.csv:3", "orders_mixed.csv:4")


def test_a_field_over_the_csv_limit_is_a_dead_letter_and_the_file_goes_on(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", f"{ORDERS}\n1,10119,A,1,1\n2,10119,\"{'x' * 200_000}\",1,1\n3,10119,C,1,1\n")
    pages = list(adapter(tmp_path, after_processing="archive", error_folder="error").read("orders", None))
    assert set(records(pages)) == {"1", "3"}
    assert rejected(pages) == {"orders_1.csv:3": "line 3: not readable as CSV (field larger than field limit (131072))"
                                                 " (this row was not sent: fix the row and upload the file again, then run"
                                                 " `karla-connector dlq retry ID`: it reads the file again, and no other read"
                                                 " clears this letter, which names no order; or `karla-connector dlq drop ID`"
                                                 " once the order is in Karla); its file is moved to the error folder 'error':"
                                                 " move it back into the source folder before dlq retry"}
    assert pages[-1].done_files[0].rejected == 1 and (tmp_path / "error" / "orders_1.csv").exists()


@pytest.mark.parametrize("bucket_bytes", [10_000_000, 10_000], ids=["in-memory", "buckets"])
def test_an_unclosed_quote_past_the_limit_names_the_lines_it_swallowed(tmp_path: Path, bucket_bytes: int) -> None:
    rows = "".join(f"{n},10119,SKU-{n},1,9.99\n" for n in range(2, 8000))
    write(tmp_path / "orders_1.csv", f"{ORDERS}\n1,10119,\"Monitor 27,1,1\n{rows}")
    pages = list(adapter(tmp_path, bucket_bytes=bucket_bytes).read("orders", None))
    ((location, reason),) = rejected(pages).items()
    first, last = (int(n) for n in reason.split(":")[0].removeprefix("lines ").split("-"))
    assert location == "orders_1.csv:2" and first == 2 and 1000 < last < 8000
    assert "field limit" in reason and "unbalanced quote" in reason
    assert set(records(pages)) == {str(n) for n in range(last, 8000)}  # every line after the refused stretch is read


def test_both_passes_see_the_same_rows_in_a_damaged_file(tmp_path: Path) -> None:
    from adapters.csv.reader import read_keys, read_rows

    body = f"{ORDERS}\n1,10119,A,1,1\n\n2,10119,\"{'x' * 140_000}\n3,10119,C,1,1\r4,10119,D,1,1\n5,10119,\"E\n"
    path = write(tmp_path / "orders_1.csv", body)
    with path.open("rb") as f:
        keys = list(read_keys(f, "utf-8", None, 0))
    with path.open("rb") as f:
        _, rows = read_rows(f, "utf-8", None)
        from_rows = [r.values[0] if r.values else "" for r in rows]
    assert keys == from_rows == ["1", "", "3", "4", "5"]


def test_an_unbalanced_quote_that_joins_lines_says_so(tmp_path: Path) -> None:
    write(tmp_path / "fulfillments_1.csv", "order_number,tracking_number,carrier\n1,\"T1,DHL\n2,T2,DHL\n3,T3,DHL\n")
    pages = list(adapter(tmp_path).read("fulfillments", None))
    assert rejected(pages) == {"fulfillments_1.csv:2": "lines 2-4: has 2 fields, the header has 3 (an unbalanced quote may have "
                                                       "joined these lines) (these rows of orders 1, 2, 3 were not sent: fix the row and upload the file again)"}


# -- numbers ---------------------------------------------------------------------------------------------
def test_ambiguous_numbers_are_dead_letters_unless_decimal_comma_is_set(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", f"{ORDERS}\n1,10119,A,1,19.990\n2,10119,B,2.000,1\n3,10119,C,1,12.5000\n4,10119,D,1,0.125\n"
          "5,10119,E,1,1e3\n6,10119,F,1,(5.00)\n7,10119,G,1,\"1.234,50\"\n")
    pages = list(adapter(tmp_path).read("orders", None))
    prices = {k: r.order.products[0].price for k, r in records(pages).items() if r.order.products}  # type: ignore[union-attr]
    assert prices == {"3": 12.5, "4": 0.125, "7": 1234.5}
    assert records(pages)["6"].order.discounts[0].amount == "5.0"  # type: ignore[union-attr]  # (5.00): money off
    reasons = rejected(pages)
    assert reasons["orders_1.csv:2"].startswith("price '19.990' is not a number: ambiguous, 19990 or 19.990? Set decimal_comma")
    assert reasons["orders_1.csv:3"].startswith("quantity '2.000' is not a number: ambiguous")
    assert reasons["orders_1.csv:6"].startswith("price '1e3' is not a number: letters inside it")
    german = records(list(adapter(tmp_path, decimal_comma=True).read("orders", None)))
    assert german["1"].order.products[0].price == 19990.0 and german["2"].order.products[0].quantity == 2000  # type: ignore[union-attr]
    english = records(list(adapter(tmp_path, decimal_comma=False).read("orders", None)))
    assert english["1"].order.products[0].price == 19.99 and english["2"].order.products[0].quantity == 2  # type: ignore[union-attr]


# -- header ----------------------------------------------------------------------------------------------
def test_a_mapped_column_twice_in_the_header_rejects_the_file_once(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", "order_number,shipping_zip_code,sku,quantity,price,sku,notes,notes\n1,10119,A,1,1,,x,y\n")
    (page,) = list(adapter(tmp_path, after_processing="archive", error_folder="error").read("orders", None))
    assert page.records == [] and [r.location for r in page.rejected] == ["orders_1.csv:1"]
    assert page.rejected[0].reason.startswith("column sku appears more than once in the header: which one holds the value is unclear")
    assert "dlq retry ID" in page.rejected[0].reason and "move it back" in page.rejected[0].reason  # how it clears
    assert page.done_files[0].rejected == 1 and (tmp_path / "error" / "orders_1.csv").exists()


# -- after the last page: error folder after a stop, files that change while read --------------------------
def test_dead_letters_before_a_stop_still_send_the_file_to_the_error_folder(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", f"{ORDERS}\n1,,A,1,1\n2,10119,B,1,1\n3,10119,C,1,1\n")
    settings = {"after_processing": "archive", "error_folder": "error", "page_size": 1}
    first = next(adapter(tmp_path, **settings).read("orders", None))  # committed, then the process stops
    assert len(first.rejected) == 1
    pages = list(adapter(tmp_path, **settings).read("orders", first.cursor))
    assert set(records(pages)) == {"2", "3"} and pages[-1].done_files[0].rejected == 1
    assert (tmp_path / "error" / "orders_1.csv").exists() and not (tmp_path / "archive").exists()


def test_a_stop_between_commit_and_move_is_finished_by_the_next_run_or_the_next_full_sync(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "orders_1.csv", f"{ORDERS}\n1,,A,1,1\n2,10119,B,1,1\n")
    write(tmp_path / "orders_2.csv", f"{ORDERS}\n3,10119,C,1,1\n")
    seen: dict = {}
    settings = {"after_processing": "archive", "error_folder": "error"}
    reader = adapter(tmp_path, seen, **settings).read("orders", None)
    last = next(reader)  # orders_1.csv's only page, with its dead letter: committed, then the process stops
    seen.update(((m.path, m.sha256), m) for m in last.done_files)
    reader.close()
    with caplog.at_level(logging.INFO, logger="adapters"):
        pages = list(adapter(tmp_path, seen, **settings).read("orders", last.cursor))
    assert set(records(pages)) == {"3"} and (tmp_path / "error" / "orders_1.csv").exists()
    assert (tmp_path / "archive" / "orders_2.csv").exists()

    write(tmp_path / "orders_3.csv", f"{ORDERS}\n4,,D,1,1\n")
    reader = adapter(tmp_path, seen, **settings).read("orders", pages[-1].cursor)
    last = next(reader)
    seen.update(((m.path, m.sha256), m) for m in last.done_files)
    reader.close()
    # Not the cursor's file (another stream's file came since): a poll does not open it again; the next full
    # sync does, and the dead-letter count stored with it sends it to the error folder.
    assert list(adapter(tmp_path, seen, **settings).read("orders", None)) == []
    assert (tmp_path / "orders_3.csv").exists()
    assert [r.key for p in adapter(tmp_path, seen, full=True, **settings).read("orders", None) for r in p.rejected] == ["4"]
    assert (tmp_path / "error" / "orders_3.csv").exists() and not (tmp_path / "orders_3.csv").exists()


def test_a_failed_move_is_retried_by_the_next_full_sync_and_a_changed_copy_is_read_not_moved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The warning promised a retry, but once the cursor had moved on to a later file the first stayed in
    # the folder forever, logged at INFO on every poll.
    write(tmp_path / "orders_1.csv", f"{HEADER}\n1,#1,a@x.de,A,10119,DE,S,T,1,1\n")
    write(tmp_path / "orders_2.csv", f"{HEADER}\n2,#2,b@x.de,B,10119,DE,S,T,1,1\n")
    (tmp_path / "archive").write_text("a file where the archive folder should be")
    seen: dict = {}
    pages = list(adapter(tmp_path, seen, after_processing="archive").read("orders", None))
    seen.update(((m.path, m.sha256), m) for p in pages for m in p.done_files)
    assert records(pages).keys() == {"1", "2"} and (tmp_path / "orders_1.csv").exists()
    (tmp_path / "archive").unlink()
    write(tmp_path / "orders_2.csv", f"{HEADER}\n2,#2,new@x.de,B,10119,DE,S,T,1,1\n")  # same name, same size and mtime
    with caplog.at_level(logging.INFO, logger="adapters"):
        again = list(adapter(tmp_path, seen, after_processing="archive").read("orders", pages[-1].cursor))
    # the cursor's file is opened: its content changed unseen by size and mtime, the hash shows it, it is read
    assert records(again)["2"].order.email_id == "new@x.de"  # type: ignore[union-attr]
    assert (tmp_path / "archive" / "orders_2.csv").exists()
    # the other is not downloaded again on every poll (a move that keeps failing would cost that each time)
    assert (tmp_path / "orders_1.csv").exists() and "left in place" not in caplog.text
    list(adapter(tmp_path, seen, full=True, after_processing="archive").read("orders", again[-1].cursor))
    assert (tmp_path / "archive" / "orders_1.csv").exists() and not (tmp_path / "orders_1.csv").exists()


class _WriterGoesOn(LocalFolder):
    """The ERP appends to a file right after the adapter hashed it, before it parses it (the live local file)."""

    def open(self, name: str):  # noqa: ANN201
        @contextmanager
        def hashing():  # noqa: ANN202
            with super(_WriterGoesOn, self).open(name) as f:
                yield f
            with (self.root / name).open("a") as f:
                f.write("9,10119,Z,1,1\n")

        return hashing()


def test_a_file_that_grows_between_hashing_and_parsing_is_not_moved_and_is_read_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "orders_1.csv", f"{ORDERS}\n1,10119,A,1,1\n")
    context = AdapterContext(source="t", clock=lambda: NOW)
    growing = CsvAdapter("t", CsvConfig(url=f"file://{tmp_path}", after_processing="archive"), context, files=_WriterGoesOn(tmp_path))
    with caplog.at_level(logging.INFO, logger="adapters"):
        pages = list(growing.read("orders", None))
    # parsed what was hashed: the row written after it is the next version's (review chg7b: it was parsed too)
    assert path.read_text().endswith("9,10119,Z,1,1\n") and set(records(pages)) == {"1"}
    assert not (tmp_path / "archive").exists() and "orders_1.csv: changed while being read, left in place" in caplog.text
    mark = pages[-1].done_files[0]  # the fingerprint of the listing, older than the file now
    again = list(adapter(tmp_path, {(mark.path, mark.sha256): mark}, after_processing="archive").read("orders", pages[-1].cursor))
    assert set(records(again)) == {"1", "9"} and (tmp_path / "archive" / "orders_1.csv").read_text().count("\n") == 3


def test_a_local_file_appended_to_between_reading_and_moving_stays(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "orders_1.csv", f"{ORDERS}\n1,10119,A,1,1\n")
    reader = adapter(tmp_path, after_processing="delete").read("orders", None)
    (page,) = [next(reader)]  # the file's last page, handed to the engine; the ERP writes on meanwhile
    with path.open("a") as f:
        f.write("2,10119,B,1,1\n")
    with caplog.at_level(logging.INFO, logger="adapters"):
        assert list(reader) == []
    assert path.exists() and "changed while being read" in caplog.text and set(records([page])) == {"1"}


# -- carriers --------------------------------------------------------------------------------------------
def test_karla_codes_with_underscores_and_uk_hermes(tmp_path: Path) -> None:
    write(tmp_path / "fulfillments_1.csv", "order_number,tracking_number,carrier\n1,T1,gls_es\n1,T2,POSTNL_INTER\n1,T3,dhl_old\n"
          "1,T4,asendia_de\n1,T5,Evri\n1,T6,Hermes UK\n1,T7,Hermes\n1,T8,GLS Spain\n")
    (record,) = records(list(adapter(tmp_path).read("fulfillments", None))).values()
    assert [dump(t).get("carrier_reference") or dump(t)["tracking_company"] for t in record.trackings] == [
        "gls_es", "postnl_inter", "dhl_old", "asendia_de", "Evri", "Hermes UK", "hrs", "gls_es"]


@pytest.mark.parametrize(("zone", "expected"), [(None, "2026-07-01T10:00:00Z"), ("Europe/Berlin", "2026-07-01T10:00:00+02:00")])
def test_timestamps_without_an_offset_are_read_in_the_source_time_zone(tmp_path: Path, zone: str | None, expected: str) -> None:
    write(tmp_path / "orders_1.csv", "order_number,order_placed_at,shipping_zip_code,sku\n1,01.07.2026 10:00,10119,A\n"
          "2,2026-07-01T10:00:00+05:00,10119,A\n")
    write(tmp_path / "fulfillments_1.csv", "order_number,tracking_number,shipped_at\n1,T1,2026-07-01 10:00\n")
    options = {"timezone": zone} if zone else {}
    source = adapter(tmp_path, **options)
    orders = records(list(source.read("orders", None)))
    assert dump(orders["1"].order)["order_placed_at"] == expected  # type: ignore[arg-type]
    assert dump(orders["2"].order)["order_placed_at"] == "2026-07-01T10:00:00+05:00"  # type: ignore[arg-type]  # an offset wins
    (parcel,) = records(list(source.read("fulfillments", None)))["1"].trackings
    assert dump(parcel)["tracking_placed_at"] == expected


def test_an_unknown_time_zone_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Berlinn'"):
        CsvConfig.model_validate({"type": "csv", "url": str(tmp_path), "timezone": "Europe/Berlinn"})


def test_a_file_without_currency_and_no_default_is_named_once_as_taken_for_eur(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Karla defaults a missing currency to EUR: a pound shop's orders went in as euros without a word.
    write(tmp_path / "orders_1.csv", f"{HEADER}\n1,#1,a@x.de,A,10119,DE,S,T,1,29.99\n2,#2,b@x.de,B,10119,DE,S,T,1,5\n")
    logger = logging.getLogger("csv-currency")
    context = AdapterContext(source="t", clock=lambda: NOW, log=logger)
    with caplog.at_level(logging.WARNING, logger="csv-currency"):
        list(CsvAdapter("t", CsvConfig(url=f"file://{tmp_path}"), context).read("orders", None))
        assert caplog.text.count("orders_1.csv has no currency column and default_currency is not set") == 1
        caplog.clear()
        pages = list(CsvAdapter("t", CsvConfig(url=f"file://{tmp_path}", default_currency="GBP"), context).read("orders", None))
    assert "currency column" not in caplog.text and records(pages)["1"].order.currency == "GBP"  # type: ignore[union-attr]


def test_files_without_a_date_column_are_named_once_as_dated_by_karla(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Karla dates an order or a parcel without one when it receives it: a backfill's parcels weeks late,
    # and the delivery estimates with them. A blank value in a file that has the column is not warned about.
    write(tmp_path / "orders_1.csv", f"{HEADER}\n1,#1,a@x.de,A,10119,DE,S,T,1,29.99\n2,#2,b@x.de,B,10119,DE,S,T,1,5\n")
    write(tmp_path / "fulfillments_1.csv", "order_number,tracking_number\n1,T1\n2,T2\n")
    write(tmp_path / "orders_2.csv", f"{HEADER},order_placed_at\n3,#3,c@x.de,C,10119,DE,S,T,1,5,\n")
    write(tmp_path / "fulfillments_2.csv", "order_number,tracking_number,shipped_at\n3,T3,2026-11-20T10:00:00Z\n")
    context = AdapterContext(source="t", clock=lambda: NOW, log=logging.getLogger("csv-dates"))
    with caplog.at_level(logging.WARNING, logger="csv-dates"):
        adapter = CsvAdapter("t", CsvConfig(url=f"file://{tmp_path}", default_currency="EUR"), context)
        for stream in ("fulfillments", "orders"):
            list(adapter.read(stream, None))
    assert [r.getMessage() for r in caplog.records] == [
        "fulfillments_1.csv has no shipped_at column: Karla dates its parcels when it receives them, not when they were shipped",
        "orders_1.csv has no order_placed_at column: Karla dates its orders when it receives them, not when they were placed",
    ]


# -- review findings -------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["file://ex", "file://srv/exports"])
def test_a_file_url_with_a_host_is_refused_at_start_up(url: str) -> None:
    # "ex" and "srv" parse as hosts: the adapter read (and with "delete" deleted in) the wrong folder.
    with pytest.raises(ConfigError, match="three slashes") as info:
        validate_source("warehouse", {"type": "csv", "url": url, "after_processing": "delete"})
    assert repr(url) in str(info.value) and f"file:///{url[7:]}" in str(info.value)


def test_file_urls_with_three_slashes_or_localhost_and_plain_paths_read_the_folder(tmp_path: Path) -> None:
    write(tmp_path / "orders_1.csv", f"{HEADER}\n1,#1,a@x.de,A,10119,DE,S,T,1,1\n")
    for url in (f"file://{tmp_path}", f"file://localhost{tmp_path}", str(tmp_path)):
        source = CsvAdapter("t", CsvConfig(url=url), AdapterContext(source="t", clock=lambda: NOW))
        assert records(list(source.read("orders", None))).keys() == {"1"}


def test_an_empty_export_is_read_as_no_orders_not_a_dead_letter(tmp_path: Path) -> None:
    # Some ERPs write a 0-byte file (or just the header) on a day without orders: normal, not an error.
    write(tmp_path / "orders_1.csv", "")
    write(tmp_path / "orders_2.csv", f"{HEADER}\n")
    write(tmp_path / "orders_3.csv", "\ufeff\r\n\r\n")
    write(tmp_path / "fulfillments_1.csv", "")
    source = adapter(tmp_path, after_processing="archive", error_folder="error")
    pages = list(source.read("orders", None)) + list(source.read("fulfillments", None))
    assert [r for p in pages for r in p.rejected] == [] and records(pages) == {}
    assert sorted((m.path, m.rejected) for p in pages for m in p.done_files) == [
        ("fulfillments_1.csv", 0), ("orders_1.csv", 0), ("orders_2.csv", 0), ("orders_3.csv", 0)]
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == [
        "fulfillments_1.csv", "orders_1.csv", "orders_2.csv", "orders_3.csv"]
    assert not (tmp_path / "error").exists()


def test_an_orders_file_without_the_zip_code_column_is_one_letter_not_one_per_order(tmp_path: Path) -> None:
    rows = "".join(f"{n},a@x.de,DE,S,1\n" for n in range(2001, 2101))
    write(tmp_path / "orders_1.csv", "Bestellnummer,email,shipping_country_code,sku,quantity\n" + rows)
    (page,) = list(adapter(tmp_path, columns={"order_number": "Bestellnummer", "shipping_zip_code": "PLZ"}).read("orders", None))
    (letter,) = page.rejected
    assert page.records == [] and letter.location == "orders_1.csv:1"
    assert letter.reason.startswith("missing required column PLZ (header: Bestellnummer,")
    assert page.done_files[0].rejected == 1


def test_a_windows_1252_file_read_as_utf8_says_which_setting_fixes_it(tmp_path: Path) -> None:
    write(tmp_path / "orders_w.csv", f"{HEADER}\n1,#1,a@x.de,Jürgen Weiß,10119,DE,S,T,1,1\n", "cp1252")
    hint = 'this looks like Windows-1252: set encoding = "cp1252" for this source, then run dlq retry'
    for encoding in ("utf-8-sig", "utf-8", "UTF8"):
        (bad,) = rejected(list(adapter(tmp_path, encoding=encoding).read("orders", None))).values()
        assert "byte b'\\xfc' at column 14 is not valid" in bad and hint in bad
    # 0x81 is not a Windows-1252 character, and ascii is not a UTF-8 setting: no guess then
    (tmp_path / "orders_w.csv").write_bytes(f"{HEADER}\n1,#1,a@x.de,J\x81rgen,10119,DE,S,T,1,1\n".encode("latin-1"))
    (bad,) = rejected(list(adapter(tmp_path).read("orders", None))).values()
    assert "not valid utf-8-sig" in bad and "Windows-1252" not in bad
    write(tmp_path / "orders_w.csv", f"{HEADER}\n1,#1,a@x.de,Jürgen Weiß,10119,DE,S,T,1,1\n", "cp1252")
    (bad,) = rejected(list(adapter(tmp_path, encoding="ascii").read("orders", None))).values()
    assert "not valid ascii" in bad and "Windows-1252" not in bad


def test_quantities_are_read_exactly_and_absurd_ones_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "orders_q.csv", "order_number,shipping_zip_code,expected_number_of_shipments,sku,quantity\n"
          "1,10119,\"2,0\",A,3.0\n1,,,B,\"3,00\"\n2,10119,,A,99999999999999999999\n3,10119,,A,1000000\n4,10119,,A,1000001\n"
          "5,10119,,A,2.5\n6,10119,99999999999999999999,A,1\n")
    pages = list(adapter(tmp_path).read("orders", None))
    got = records(pages)
    one = dump(got["1"].order)
    assert [p["quantity"] for p in one["products"]] == [3, 3] and one["expected_number_of_shipments"] == 2
    assert type(one["products"][0]["quantity"]) is int and dump(got["3"].order)["products"][0]["quantity"] == 1_000_000
    assert set(got) == {"1", "3"}
    reasons = rejected(pages)
    assert "quantity '99999999999999999999' is more than 1,000,000" in reasons["orders_q.csv:4"]
    assert "quantity '1000001' is more than 1,000,000" in reasons["orders_q.csv:6"]
    assert "quantity '2.5' is not a whole number" in reasons["orders_q.csv:7"]
    assert "expected_number_of_shipments" in reasons["orders_q.csv:8"] and "1e" not in reasons["orders_q.csv:8"]


def test_rows_of_one_order_that_disagree_on_order_values_are_named_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "orders_d.csv", f"{HEADER},total_order_price\n"
          "2005,#2005,a@x.de,A,10119,DE,S1,T,1,1,10\n2006,#2006,b@x.de,B,10119,DE,S1,T,1,1,10\n"
          "2005,#2005,other@x.de,A,80331,DE,S2,T,1,1,12\n2006,#2006,b@x.de,B,10119,DE,S2,T,1,1,10\n"
          "2007,#2007,c@x.de,C,10119,DE,S1,T,1,1,10\n2007,,,,,,S2,T,1,1,\n2005,#2005,,A,,DE,S3,T,1,1,\n")
    context = AdapterContext(source="t", clock=lambda: NOW, log=logging.getLogger("csv-conflicts"))
    with caplog.at_level(logging.WARNING, logger="csv-conflicts"):
        got = records(list(CsvAdapter("t", CsvConfig(url=f"file://{tmp_path}", default_currency="EUR"), context).read("orders", None)))
    assert got.keys() == {"2005", "2006", "2007"} and got["2005"].order.email_id == "a@x.de"  # type: ignore[union-attr]
    (warning,) = [r.getMessage() for r in caplog.records if "column" not in r.getMessage()]  # not 2006 (repeated values), not 2007 (blanks)
    assert warning == ("orders_d.csv: the rows of order 2005 differ in email (lines 2, 4), total_order_price (lines 2, 4), "
                       "shipping_zip_code (lines 2, 4); the first non-empty value of each is sent")  # no values: personal data


def test_delete_keeps_a_file_with_dead_letters_when_there_is_no_error_folder(tmp_path: Path) -> None:
    # The file went, and with it the rest of the bad order's rows: a letter holds only its bad row, and
    # `dlq retry` found "their file is gone".
    write(tmp_path / "orders_ok.csv", f"{HEADER}\n1,#1,a@x.de,A,10119,DE,S,T,1,1\n")
    write(tmp_path / "orders_bad.csv", f"{HEADER}\n2,#2,b@x.de,B,10119,DE,S,T,1,1\n2,#2,b@x.de,B,10119,DE,S2,T2,x,1\n")
    seen: dict = {}
    pages = list(adapter(tmp_path, seen, after_processing="delete").read("orders", None))
    seen.update(((m.path, m.sha256), m) for p in pages for m in p.done_files)
    assert set(records(pages)) == {"1"} and [r.key for p in pages for r in p.rejected] == ["2"]
    assert not (tmp_path / "orders_ok.csv").exists() and (tmp_path / "orders_bad.csv").exists()
    assert list(adapter(tmp_path, seen, after_processing="delete").read("orders", pages[-1].cursor)) == []  # not read again
    list(adapter(tmp_path, seen, full=True, after_processing="delete", error_folder="error").read("orders", pages[-1].cursor))
    assert (tmp_path / "error" / "orders_bad.csv").exists()  # with an error folder it goes there (a full sync moves it)
