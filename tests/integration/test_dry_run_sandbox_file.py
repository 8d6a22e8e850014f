"""`sync --dry-run` refuses a state file the sandbox filled, against the real Karla, as `sync` does: it showed
nothing to send ("unchanged"), exit 0, to a merchant checking before going live (found by a docs review)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import cli, write_config, write_orders


def test_dry_run_refuses_a_sandbox_file_like_sync(tmp_path: Path, sandbox: Any) -> None:
    config = write_config(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    assert cli(config, "sync").returncode == 0  # the trial: the sandbox acknowledged both orders
    config.write_text(config.read_text().replace(sandbox.url, "https://karla.invalid"), encoding="utf-8")  # live
    assert cli(config, "sync").returncode == 2
    dry = cli(config, "sync", "--dry-run", "--full")
    assert dry.returncode == 2, dry.stdout + dry.stderr
    assert "sandbox" in dry.stderr and "karla.invalid" in dry.stderr
