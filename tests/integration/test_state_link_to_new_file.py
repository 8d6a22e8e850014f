"""A state path that is a link to a file not created yet, in a folder that exists (the state file moved to a volume,
linked from where the config names it, before the first sync): `check` said "ok", `sync` exited 2 "File exists"
(the 0600 create refused the link itself), and later "is a link to …, which does not exist". It just works: the file
is created 0600 at the link's target, the lock beside it, and the link stays a link."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.conftest import SLUG, cli, write_config, write_orders
from tests.integration.test_dry_run_state import _as_a_user
from tests.integration.test_upgrade_safety import _config


def test_a_link_to_a_state_file_not_created_yet_is_created_at_its_target(tmp_path: Path, sandbox) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    config = write_config(tmp_path, sandbox.url)
    link = tmp_path / "state.db"  # the path the config names
    os.symlink(volume / "state.db", link)
    write_orders(tmp_path / "files", "orders_1.csv", [1, 2])
    check = cli(config, "check")
    assert f"ok state file {link}" in check.stdout and "not created yet; the folder is writable" in check.stdout, \
        check.stdout
    done = cli(config, "sync")
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(sandbox.orders(SLUG)) == {"1", "2"}
    assert link.is_symlink() and os.readlink(link) == str(volume / "state.db")
    assert stat.S_IMODE((volume / "state.db").stat().st_mode) == 0o600
    assert (volume / "state.db.lock").exists()
    status = cli(config, "status", "--json")
    assert status.returncode == 0, status.stderr[-2000:]
    json.loads(status.stdout)


def test_through_a_link_the_targets_folder_is_judged(tmp_path: Path) -> None:
    """The folder the link sits in may be read-only (a config folder): the file, its -wal and -shm are written
    beside the target. `check` and `sync` judged the link's folder, and refused."""
    conf, volume = tmp_path / "conf", tmp_path / "volume"
    conf.mkdir()
    volume.mkdir()
    link = conf / "state.db"
    os.symlink(volume / "state.db", link)
    config = _config(tmp_path, link)
    conf.chmod(0o555)
    try:
        check = _as_a_user(config, "check")
        assert f"ok state file {link}" in check.stdout, check.stdout
        done = _as_a_user(config, "sync")
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        conf.chmod(0o755)
    assert stat.S_IMODE((volume / "state.db").stat().st_mode) == 0o600 and link.is_symlink()
