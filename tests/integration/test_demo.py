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


def _demo(workdir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connector", "demo", "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_demo_refuses_a_folder_it_did_not_write_and_deletes_nothing(tmp_path: Path) -> None:
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.txt").write_text("months of work")
    result = _demo(mine, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"demo folder {mine} is not empty" in result.stderr and ".karla-demo" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["chapter1.txt"]  # untouched, nothing added
    assert (mine / "chapter1.txt").read_text() == "months of work"

    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep")
    refused = _demo(a_file, tmp_path)
    assert refused.returncode == 2 and "is not a folder" in refused.stderr and a_file.read_text() == "keep"


def test_demo_uses_an_empty_folder_and_replaces_its_own_folder_on_the_next_run(tmp_path: Path) -> None:
    workdir = tmp_path / "empty"
    workdir.mkdir()
    first = _demo(workdir, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (workdir / ".karla-demo").is_file()
    (workdir / "exports" / "scratch.csv").write_text("left over")
    again = _demo(workdir, tmp_path)  # the marker says the demo wrote it: replaced, and the demo runs afresh
    assert again.returncode == 0, again.stdout + again.stderr
    assert "delivered 3 orders and 4 trackings" in again.stdout  # a fresh state: everything is sent again
    assert not (workdir / "exports" / "scratch.csv").exists()


def test_demo_help_says_which_folders_it_replaces(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "connector", "demo", "--help"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    text = " ".join(result.stdout.split())
    assert result.returncode == 0 and ".karla-demo" in text and "refused" in text
