"""`sync --dry-run` with no writable temporary folder (a read-only root file system, a full /tmp): it copies the
state file into a temporary folder, and ended in "internal error: FileNotFoundError: … No usable temporary
directory", exit 4 (a bug). It is one line naming TMPDIR, exit 3 (could not finish), as the CSV source says it;
and with a folder the same dry run works."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SLUG, cli, write_config, write_orders
from tests.sftpsource.test_no_temp_folder import no_temp_folder


def test_a_dry_run_with_no_temp_folder_names_tmpdir(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_1.csv", [1, 2])
    assert cli(config, "sync").returncode == 0  # a state file to copy
    write_orders(tmp_path / "files", "orders_2.csv", [3])
    stuck = cli(config, "sync", "--dry-run", env=no_temp_folder(tmp_path))
    assert stuck.returncode == 3, stuck.stderr
    lines = stuck.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no writable temporary folder to hold the dry run's copy "
                                                   "of the state file"), stuck.stderr
    assert "set the TMPDIR environment variable to a writable folder" in lines[0]
    assert "internal error" not in stuck.stderr and stuck.stdout == ""
    fixed = cli(config, "sync", "--dry-run")
    assert fixed.returncode == 0, fixed.stderr
    assert [item["id"] for item in json.loads(fixed.stdout)["would_send"]] == ["3"], fixed.stdout
    assert set(sandbox.orders(SLUG)) == {"1", "2"}  # a dry run sends nothing
