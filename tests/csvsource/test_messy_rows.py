"""Messy exports: quotes that never close, values Karla refuses, byte order marks, odd encodings, huge lines.

Each test pins a defect that once lost orders silently or sent the merchant to the wrong line.
"""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.base import AdapterContext, Page
from adapters.csv import CsvAdapter, CsvConfig
from adapters.csv import lines
from adapters.csv.reader import read_keys, read_rows
from connector.errors import ConfigError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
ORDERS = "order_number,shipping_zip_code,sku,quantity,product_title"


def read(folder: Path, stream: str = "orders", **config: object) -> list[Page]:
    context = AdapterContext(source="t", clock=lambda: NOW)
    return list(CsvAdapter("t", CsvConfig(url=f"file://{folder}", settle_seconds=0, **config), context).read(stream, None))


def sent(pages: list[Page]) -> set[str]:
    return {r.key for p in pages for r in p.records}


def letters(pages: list[Page]) -> dict[str, str]:
    return {r.location: r.reason for p in pages for r in p.rejected}


def rows_of(path: Path, encoding: str = "utf-8") -> list[tuple[int, list[str], str | None]]:
    with path.open("rb") as f:
        return [(r.line, r.values, r.problem) for r in read_rows(f, encoding, None)[1]]


# -- an unbalanced quote that keeps the field count ------------------------------------------------------
def test_an_unclosed_quote_in_the_last_column_dead_letters_the_rows_it_swallowed(tmp_path: Path) -> None:
    titles = {3: '"Monitor 27', 8: '"Cable" 2m'}  # the quote opened on line 4 closes on line 9
    lines = [ORDERS] + [f"{n},10119,S{n},1,{titles.get(n, 'Shirt')}" for n in range(1, 11)]
    (tmp_path / "orders_1.csv").write_text("\n".join(lines) + "\n")
    pages = read(tmp_path)
    assert sent(pages) == {"1", "2", "9", "10"}  # orders 4-8 are not sent inside order 3's title
    assert letters(pages) == {"orders_1.csv:4": "lines 4-9: a quoted field holds lines that look like rows of their own (an "
                                                "unbalanced quote may have joined these lines) (orders 3, 4, 5, 6, 7, 8 not sent: fix the row "
                                                "and upload the file again)"}


def test_a_quote_never_closed_runs_to_the_end_of_the_file_and_says_so(tmp_path: Path) -> None:
    rows = [f"{n},10119,S{n},1,Shirt" for n in range(2, 200)]
    (tmp_path / "orders_1.csv").write_text("\n".join([ORDERS, '1,10119,S1,1,"Monitor 27', *rows]) + "\n")
    ((where, why),) = letters(read(tmp_path)).items()
    assert where == "orders_1.csv:2" and why.startswith("lines 2-200: ") and "unbalanced quote" in why
    # lines that do not look like rows are caught by the quote still being open at the end
    (tmp_path / "orders_1.csv").write_text(f'{ORDERS}\n1,10119,S1,1,"Monitor 27\n27 inch\nblack\n')
    assert rows_of(tmp_path / "orders_1.csv")[0][2] == ("lines 2-4: a quoted field is not closed before the end of the file "
                                                        "(an unbalanced quote may have joined these lines)")
    (tmp_path / "orders_1.csv").write_text(f'{ORDERS}\n1,10119,S1,1,Shirt\n2,10119,S2,1,"Monitor 27')
    assert [r[2] for r in rows_of(tmp_path / "orders_1.csv")] == [None, "line 3: a quoted field is not closed before the end of the file"]


def test_quoted_line_breaks_in_addresses_and_titles_still_read(tmp_path: Path) -> None:
    header = "order_number,shipping_zip_code,shipping_address_line_1,sku,quantity,product_title"
    (tmp_path / "orders_1.csv").write_text(f'{header}\n1,10119,"Hof 2, Haus B\nbei Meyer, 3. OG",S1,1,Shirt\r\n'
                                           f'2,10119,Weg 1,S2,1,"Set: Tasse, Teller,\nLöffel"\n'
                                           f'3,10119,"Weg 3\n\nHinterhaus",S3,1,"last row,\nno line end"')
    pages = read(tmp_path, default_currency="EUR")
    assert sent(pages) == {"1", "2", "3"} and not letters(pages)
    by_key = {r.key: r.order for p in pages for r in p.records}
    assert by_key["1"].address.address_line_1 == "Hof 2, Haus B\nbei Meyer, 3. OG"  # type: ignore[union-attr]
    assert by_key["3"].products[0].title == "last row,\nno line end"  # type: ignore[union-attr]


def test_a_narrow_file_keeps_an_address_line_with_a_rows_worth_of_commas(tmp_path: Path) -> None:
    # Four columns: one address line with three commas has as many delimiters as a row. Taken for a
    # swallowed row, the order was not sent; two such lines still are (an unclosed quote).
    header = "order_number,shipping_zip_code,shipping_address_line_1,sku"
    (tmp_path / "orders_1.csv").write_text(f'{header}\n1,10119,"Musterstr. 1\nc/o Meyer, Hinterhaus, 2. OG, links",S1\n'
                                           f'2,10119,Weg 2,S2\n')
    pages = read(tmp_path, default_currency="EUR")
    assert sent(pages) == {"1", "2"} and not letters(pages)
    (tmp_path / "orders_1.csv").write_text(f'{header}\n1,10119,"Weg 1,S1\n2,10119,Weg 2,S2\n3,10119,Weg 3,S3\n'
                                           f'4,10119,"Weg 4",S4\n')
    assert "unbalanced quote" in letters(read(tmp_path, default_currency="EUR"))["orders_1.csv:2"]


# -- a value Karla's model refuses: the letter names its row -----------------------------------------------
def test_a_refused_value_is_a_letter_at_its_own_row_naming_its_column(tmp_path: Path) -> None:
    (tmp_path / "orders_1.csv").write_text("order_number,shipping_zip_code,shipping_country_code,sku,quantity,price\n"
                                           "1,10119,,S1,1,1\n1,,,S2,1,1\n1,,,S3,-2,1\n"
                                           "3,10119,,S1,1,1\n3,,Atlantis,S2,1,1\n")
    pages = read(tmp_path, default_currency="EUR")
    got = {r.location: (r.reason, r.raw) for p in pages for r in p.rejected}
    assert set(got) == {"orders_1.csv:4", "orders_1.csv:6"} and not sent(pages)
    assert got["orders_1.csv:4"][0].startswith("order 1: quantity '-2' (products.2.quantity): Input should be greater than")
    assert got["orders_1.csv:4"][1]["sku"] == "S3"  # the stored row is the bad one, not the order's first
    assert got["orders_1.csv:6"][0].startswith("shipping_country_code 'Atlantis' is not an ISO 3166-1 alpha-2 code such as DE")
    assert got["orders_1.csv:6"][1]["shipping_country_code"] == "Atlantis"


def test_a_currency_that_is_no_code_is_named_in_the_validators_own_words(tmp_path: Path) -> None:
    (tmp_path / "orders_1.csv").write_text("order_number,shipping_zip_code,sku,currency\n1,10119,S1,E1$\n2,10119,S1,eur\n")
    pages = read(tmp_path)
    (reason,) = [r.reason for p in pages for r in p.rejected]
    assert reason.startswith("order 1: currency 'E1$' (currency): 'E1$' is not a three-letter currency code such as EUR")
    assert sent(pages) == {"2"}  # "eur" goes, as EUR


def test_a_refused_parcel_value_is_a_letter_at_its_own_row(tmp_path: Path) -> None:
    (tmp_path / "fulfillments_1.csv").write_text("order_number,tracking_number,carrier,sku,quantity\n"
                                                 "1,T1,DHL,A,1\n1,T1,,B,-1\n1,T2,DHL,A,1\n")
    pages = read(tmp_path, "fulfillments")
    ((where, why),) = letters(pages).items()
    assert where == "fulfillments_1.csv:3" and why.startswith("parcel T1 of order 1: quantity '-1' (products.1.quantity): ")
    assert [t.tracking_number for p in pages for r in p.records for t in r.trackings] == ["T2"]


# -- byte order marks and encodings ------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
def test_a_utf8_byte_order_mark_is_no_part_of_the_header_whatever_the_encoding(tmp_path: Path, encoding: str) -> None:
    (tmp_path / "orders_1.csv").write_bytes(b"\xef\xbb\xbf" + f"{ORDERS}\n1,10119,S1,1,Größe M\n".encode())
    pages = read(tmp_path, encoding=encoding, default_currency="EUR")
    assert not letters(pages) and sent(pages) == {"1"}
    # the mark says the file is UTF-8: read as such, not as cp1252 mojibake ("GrÃ¶ÃŸe")
    assert pages[-1].records[0].order.products[0].title == "Größe M"  # type: ignore[union-attr]


def test_windows_1252_behind_a_byte_order_mark_gets_advice_that_can_help(tmp_path: Path) -> None:
    # The mark makes the file read as UTF-8 whatever the setting: "set encoding = cp1252" could not help.
    (tmp_path / "orders_1.csv").write_bytes(b"\xef\xbb\xbf" + f"{ORDERS}\n1,10119,S1,1,Größe M\n".encode("cp1252"))
    (why,) = letters(read(tmp_path, encoding="cp1252", default_currency="EUR")).values()
    assert "behind a UTF-8 byte order mark" in why and 'set encoding = "cp1252"' not in why


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-16-le", "cp037"])
def test_an_encoding_whose_line_end_is_not_the_byte_newline_is_refused_naming_the_setting(tmp_path: Path, encoding: str) -> None:
    with pytest.raises(ValidationError, match="cannot be read"):  # at start-up, as the setting it is
        CsvConfig(url=f"file://{tmp_path}", encoding=encoding)
    path = tmp_path / "orders_1.csv"
    path.write_bytes(f"{ORDERS}\n1,10119,S1,1,Shirt\n".encode(encoding))
    with pytest.raises(ConfigError, match=f"encoding = '{encoding}'"), path.open("rb") as f:  # the reader, too
        read_rows(f, encoding, None)


# -- huge lines and CR-only files in bounded memory --------------------------------------------------------
def _peak_rows(path: Path) -> tuple[list[tuple[int, str | None]], int]:
    tracemalloc.start()
    with path.open("rb") as f:
        found = [(r.line, r.problem) for r in read_rows(f, "utf-8", None)[1] if r.problem]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return found, peak


def test_a_huge_line_is_a_letter_read_past_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "orders_1.csv"
    with path.open("wb") as f:  # 24 MB on one line: 400k rows whose line ends were lost
        f.write(f"{ORDERS}\n1,10119,S1,1,Shirt\n".encode())
        f.write(b"".join(b"%d,10119,SKU,1,Some product title," % n for n in range(400_000)) + b"\n")
        f.write(b"3,10119,S3,1,Shirt\n")
    found, peak = _peak_rows(path)
    assert found == [(3, "line 3: longer than 1 MB, not read (a missing line end, or not a CSV file?)")]
    assert peak < 3_000_000, f"peak {peak} for a {path.stat().st_size} byte file"
    pages = read(tmp_path, default_currency="EUR")
    assert sent(pages) == {"1", "3"} and list(letters(pages)) == ["orders_1.csv:3"]
    with path.open("rb") as f:  # the cheap first pass sees the same rows
        assert list(read_keys(f, "utf-8", None, 0)) == ["1", "", "3"]


def test_a_cr_only_file_is_split_as_it_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "orders_1.csv"
    body = "".join(f"{n},10119,SKU-{n},1,Some product title {n}\r" for n in range(1, 60_001))
    path.write_bytes(f"{ORDERS}\r{body}".encode())
    found, peak = _peak_rows(path)
    assert found == [] and peak < 1_000_000, f"peak {peak} for a {path.stat().st_size} byte file"
    with path.open("rb") as f:
        last = list(read_rows(f, "utf-8", None)[1])[-1]
    assert last.line == 60_001 and last.values[0] == "60000"


@pytest.mark.parametrize(("chunk", "limit"), [(1, 16), (2, 17), (3, 23), (5, 64), (16, 64), (64, 64)])
def test_line_ends_split_across_read_chunks_are_the_same_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int,
                                                               limit: int) -> None:
    """A CRLF cut between two blocks is one line end, not a CR and a blank line; an over-long line in any
    mix of line ends is one letter and the next line is read."""
    text = (f"a,b\r1,x\r\n22,yy\r333,zzz\n4,\"q\rr\"\r\n5,{'L' * 200}\r6,w\r\n7,{'M' * 200}\r\n8,v\n9,{'N' * 200}\n10,u")
    path = tmp_path / "orders_1.csv"
    path.write_bytes(text.encode())
    want = [(2, ["1", "x"]), (3, ["22", "yy"]), (4, ["333", "zzz"]), (5, ["4", "q\rr"]), (7, ["5", "L" * 200]), (8, ["6", "w"]),
            (9, ["7", "M" * 200]), (10, ["8", "v"]), (11, ["9", "N" * 200]), (12, ["10", "u"])]
    assert [(line, values) for line, values, _ in rows_of(path)] == want
    monkeypatch.setattr(lines, "_CHUNK", chunk)
    monkeypatch.setattr(lines, "_MAX_LINE", limit)
    got = rows_of(path)
    assert [(line, values) for line, values, problem in got if problem is None] == [w for w in want if len(w[1][1]) < 10]
    assert [line for line, _, problem in got if problem] == [7, 9, 11]
    with path.open("rb") as f:
        assert list(read_keys(f, "utf-8", None, 0)) == ["1", "22", "333", "4", "", "6", "", "8", "", "10"]
