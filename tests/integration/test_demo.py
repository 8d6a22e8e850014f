"""`karla-connector demo` (what `make demo` runs) works end to end and tells the story it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_and_resync_sends_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "connector", "demo", "--workdir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "delivered 3 orders and 4 trackings" in out
    assert "second sync sent 0 requests" in out
    assert "orders_001.csv:7" in out and "zip" in out  # the bad row, named by file:line and field
    assert "hrs" in out and "Kiala Express" in out  # Hermes mapped to the enum, unknown carrier kept as a name
    assert "demo-key" not in out + result.stderr
