"""`dlq list` with many letters (found by a state-file review, round 6): `--json` took 1.2 ms a letter in rich's
highlighting (20k letters 25 s, 150k over 4 minutes), and the table as long. `--json` now writes the JSON itself
(BENCHMARKS.md has the figures; no timing here) and must list every letter exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

from connector.cli_dlq import TABLE_LIMIT
from state import open_state
from tests.conftest import cli
from tests.integration.test_upgrade_safety import _config

LETTERS = 3000


def _with_letters(path: Path, count: int) -> Path:
    db = open_state(path)
    with db.transaction() as conn:
        conn.exec_driver_sql(
            "INSERT INTO dead_letter (created_at, stage, source, stream, order_key, location, reason, details)"
            " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " SELECT 1700000000 + i, 'source', 'w', 'orders', 'O-' || i, 'orders.csv:' || (i + 1),"
            " 'row ' || i || ': shipping_zip_code is empty [bold]München[/bold]', '{\"row\": {\"a\": \"x\"}}' FROM n",
            (count,),
        )
    db.close()
    return path


def _listed(config: Path, *args: str) -> str:
    done = cli(config, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_json_lists_every_letter_as_rich_wrote_it(tmp_path: Path) -> None:
    config = _config(tmp_path, _with_letters(tmp_path / "s.db", LETTERS))
    listed = _listed(config, "dlq", "list", "--json")
    letters = json.loads(listed)
    assert [letter["id"] for letter in letters] == list(range(1, LETTERS + 1))
    assert letters[0]["reason"] == "row 1: shipping_zip_code is empty [bold]München[/bold]"
    assert '"reason": "row 1: shipping_zip_code is empty [bold]München[/bold]",\n' in listed  # as rich wrote it
    assert letters[0]["details"] == {"row": {"a": "x"}}


def test_the_table_shows_the_oldest_letters_and_says_how_to_see_all(tmp_path: Path) -> None:
    config = _config(tmp_path, _with_letters(tmp_path / "s.db", TABLE_LIMIT + 5))
    table = _listed(config, "dlq", "list")
    said = f"the oldest {TABLE_LIMIT} of {TABLE_LIMIT + 5} dead letters shown: `dlq list --json` lists them all"
    assert said in table
    assert f"O-{TABLE_LIMIT} " in table and f"O-{TABLE_LIMIT + 1} " not in table
