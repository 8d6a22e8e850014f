"""CSV settings refused at start that used to fail on every file: folders outside the source folder and a
default currency Karla cannot take."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.csv.config import CsvConfig

BASE = {"type": "csv", "url": "file:///x"}


@pytest.mark.parametrize("key", ["archive_folder", "error_folder"])
@pytest.mark.parametrize("folder", ["../outside", "/srv/archive", "a/../../b", ""])
def test_folders_outside_the_source_folder_are_refused_at_start(key: str, folder: str) -> None:
    with pytest.raises(ValidationError, match=f"{key}\n.*must be a relative path inside the source folder"):
        CsvConfig.model_validate({**BASE, key: folder})


@pytest.mark.parametrize("folder", ["archive", "done/2026", "./errors"])
def test_folders_inside_are_accepted(folder: str) -> None:
    config = CsvConfig.model_validate({**BASE, "archive_folder": folder, "error_folder": folder})
    assert config.archive_folder == folder


@pytest.mark.parametrize("value", ["euro", "E", "€", "12 3", "EU1"])
def test_a_default_currency_that_is_no_code_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match="not a three-letter currency code"):
        CsvConfig.model_validate({**BASE, "default_currency": value})


def test_a_default_currency_is_upper_cased() -> None:
    assert CsvConfig.model_validate({**BASE, "default_currency": " chf "}).default_currency == "CHF"
