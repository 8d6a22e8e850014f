"""A local file larger than bucket_bytes whose rows are not sorted by order is grouped in temporary files:
with no writable temporary folder (a read-only root, a full /tmp) the run fails naming TMPDIR (exit 3) instead
of calling the file "vanished" and ending with exit 0."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SLUG, cli, write_config, write_orders
from tests.sftpsource.test_no_temp_folder import no_temp_folder


def test_a_file_to_spill_with_no_temp_folder_fails_the_run_naming_tmpdir(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url, source={"bucket_bytes": 10_000})
    big = write_orders(tmp_path / "files", "orders_1.csv", list(range(120, 0, -1)))  # newest first: not grouped
    assert big.stat().st_size > 10_000
    stuck = cli(config, "sync", env=no_temp_folder(tmp_path))
    assert stuck.returncode == 3, stuck.stderr
    assert "TMPDIR" in stuck.stderr and "orders_1.csv" in stuck.stderr and "vanished" not in stuck.stderr
    assert sandbox.orders(SLUG) == {}
    fixed = cli(config, "sync")  # nothing of it was marked read: it is read once there is a folder
    assert fixed.returncode == 0, fixed.stderr
    assert len(sandbox.orders(SLUG)) == 120
