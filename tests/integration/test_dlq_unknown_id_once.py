"""`dlq retry` with an id that names no letter says so once (a newcomer's walkthrough reported it twice; not
reproduced on this tree: kept as a guard), on stdout, and exits 2."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import cli, write_config


def test_an_unknown_id_is_named_once(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, sandbox.url)
    assert cli(config, "sync").returncode == 0  # a state file, no letters
    result = cli(config, "dlq", "retry", "1")
    assert result.returncode == 2, result.stderr
    said = (result.stdout + result.stderr).count("no dead letter with id 1")
    assert said == 1, (result.stdout, result.stderr)
