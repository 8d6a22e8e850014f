"""Karla's answers about one shop hold back that shop only: a 400 ``invalid_merchant_or_key`` for another
shop (Karla's authentication page: a request without "a valid user and api key pair" gets a 400), and a
shop Karla knows but has not set up yet (``shop_settings_not_found``, ``shop_fixtures_not_found``, 404).
Both used to stop every shop, blaming malformed credentials or [karla].base_url."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SLUG, cli
from tests.integration.test_karla_shop_keys import AUSTRIA, two_shops


def _run(config: Path) -> tuple[int, str, dict]:
    done = cli(config, "sync")
    return done.returncode, " ".join((done.stdout + done.stderr).split()), json.loads(cli(config, "status", "--json").stdout)


def test_a_400_for_another_shop_holds_back_only_that_shop(tmp_path: Path, sandbox) -> None:
    sandbox.refuse_order("901", 400, "invalid_merchant_or_key", "Missing or malformed authentication credentials")
    returncode, said, status = _run(two_shops(tmp_path, sandbox.url))
    assert returncode == 2, said
    assert sorted(sandbox.orders(SLUG)) == ["1", "2"] and sandbox.orders(AUSTRIA) == {}  # the main shop's key works
    assert f"shop '{AUSTRIA}'" in said and "organisation-level key" in said
    assert "credentials missing or malformed" not in said
    assert "wrong, deleted or expired" in said  # a 400 to the key's check would look like a key taken: still named
    assert status["pending"] == 1 and status["dead"] == 0


@pytest.mark.parametrize(("key", "message", "missing"), [
    ("shop_settings_not_found", "Shop settings were not found", "settings"),
    ("shop_fixtures_not_found", "Shop fixtures need to be created first", "fixtures"),
])
def test_a_shop_not_set_up_yet_holds_back_only_that_shop(tmp_path: Path, sandbox, key: str, message: str, missing: str) -> None:
    sandbox.refuse_order("901", 404, key, message)
    returncode, said, status = _run(two_shops(tmp_path, sandbox.url))
    assert returncode == 2, said
    assert sorted(sandbox.orders(SLUG)) == ["1", "2"] and sandbox.orders(AUSTRIA) == {}
    assert f"shop '{AUSTRIA}' is not set up yet (shop {missing} missing)" in said and "ask Karla support" in said
    assert "base_url" not in said
    assert status["pending"] == 1 and status["dead"] == 0
