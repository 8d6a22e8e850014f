"""`sync --dry-run` with a temporary folder too small for the copy of the state file (a small tmpfs at /tmp): the
copy ran out of room and the CLI said "cannot write the state file <the real one>: … free disk space", exit 4,
naming a file the dry run never writes. It names the temporary folder and TMPDIR, exit 3. A file-size limit
(RLIMIT_FSIZE) stands in for the small folder: the dry run reads the real file and writes only the copy."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from tests.conftest import SLUG, cli, write_config, write_orders


def _dry_run(config: Path, tmpdir: Path, limit: int) -> subprocess.CompletedProcess[str]:
    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")} | {"TMPDIR": str(tmpdir)}
    return subprocess.run([sys.executable, "-m", "connector", "--config", str(config), "sync", "--dry-run"],
                          capture_output=True, text=True, env=env, cwd=config.parent, timeout=120,
                          preexec_fn=limit_files)


def test_a_dry_run_without_room_for_the_copy_names_the_temporary_folder(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    write_orders(tmp_path / "files", "orders_1.csv", range(1, 1001))
    assert cli(config, "sync").returncode == 0  # a state file worth copying
    state = tmp_path / "state.db"
    before = state.read_bytes()
    write_orders(tmp_path / "files", "orders_2.csv", [5000])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    limit = state.stat().st_size // 2
    stuck = _dry_run(config, scratch, limit)
    assert stuck.returncode == 3, (stuck.returncode, stuck.stderr[-2000:])
    lines = stuck.stderr.strip().splitlines()
    assert len(lines) == 1, stuck.stderr[-2000:]
    assert lines[0].startswith(f"error: the temporary folder {scratch} has no room for the dry run's copy of the "
                               f"state file {state} ("), lines[0]
    assert "set the TMPDIR environment variable to a folder with room" in lines[0]
    for wrong in ("cannot write the state file", "free disk space", "internal error", "Traceback"):
        assert wrong not in stuck.stderr, (wrong, stuck.stderr[-2000:])
    assert stuck.stdout == "" and state.read_bytes() == before and not list(scratch.iterdir())
    fixed = _dry_run(config, scratch, resource.RLIM_INFINITY)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert [item["id"] for item in json.loads(fixed.stdout)["would_send"]] == ["5000"], fixed.stdout[-2000:]
    assert len(sandbox.orders(SLUG)) == 1000  # a dry run sends nothing
