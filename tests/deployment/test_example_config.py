"""config.example.toml, which the install recipes copy into place, names every key of its tables (set or
commented out), so a merchant finds timeouts, TLS and key settings without reading the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from adapters.base import SourceConfig
from adapters.csv.config import CsvConfig
from adapters.csv.sftp import SftpSettings
from adapters.shopify.config import ShopifyConfig
from adapters.shopware.config import ShopwareConfig
from connector.settings import DaemonSettings, KarlaSettings, LogSettings, StateSettings

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def tables() -> dict[str, set[str]]:
    """Keys per table header, commented-out headers and keys included (twice, "# # ", in a commented-out
    source); a sub-table counts as its parent's key."""
    keys: dict[str, set[str]] = {}
    current = ""
    for line in EXAMPLE.read_text().splitlines():
        header = re.match(r"^(?:#\s*)*\[([\w.]+)\]", line)
        if header:
            current = header.group(1)
            keys.setdefault(current, set())
            parent, _, child = current.rpartition(".")
            keys.setdefault(parent, set()).add(child)
            continue
        key = re.match(r"^(?:#\s*)*([a-z_]+)\s*=", line)
        if key and current:
            keys[current].add(key.group(1))
    return keys


CASES = [
    ("karla", KarlaSettings, False),
    ("state", StateSettings, False),
    ("daemon", DaemonSettings, False),
    ("log", LogSettings, False),
    ("sources.warehouse", CsvConfig, True),
    ("sources.warehouse.sftp", SftpSettings, False),
    ("sources.shop", ShopifyConfig, True),
    ("sources.shopware", ShopwareConfig, True),
]


@pytest.mark.parametrize(("table", "model", "skip_common"), CASES, ids=[c[0] for c in CASES])
def test_every_key_is_in_the_example(table: str, model: type[BaseModel], skip_common: bool) -> None:
    expected = set(model.model_fields) - (set(SourceConfig.model_fields) if skip_common else set())
    missing = expected - tables().get(table, set())
    assert not missing, f"[{table}] in config.example.toml lacks {sorted(missing)}"


def test_the_keys_every_source_has_are_listed() -> None:
    text = EXAMPLE.read_text()
    block = text[text.index("# Sources: any name"):text.index("[sources.")]
    missing = [name for name in SourceConfig.model_fields if not re.search(rf"\b{name}\b", block)]
    assert not missing, missing


def test_carrier_examples_use_karla_codes_and_never_hrs_for_hermes_uk() -> None:
    """Karla's hrs is Hermes Germany; Evri / Hermes UK have no code and travel as tracking_company."""
    from connector.karla.carriers import CARRIERS

    examples = re.findall(r'^(?:#\s*)*"([^"]+)"\s*=\s*"(\w+)"', EXAMPLE.read_text(), re.M)
    carriers = [(name, code) for name, code in examples if not re.fullmatch(r"[0-9a-f]{32}", name)]  # not sales channels
    assert carriers
    for name, code in carriers:
        assert code in CARRIERS, (name, code)
        assert not (code == "hrs" and re.search(r"\b(uk|evri)\b", name, re.I)), name
