"""The one-process lock and `dlq retry` beside other commands: found by a concurrency review.

- A state file reached through a symlink got a second lock file beside the link, so a `sync` drained the
  outbox the daemon was draining (orders sent twice).
- A second `run` was told "stop the service, run this, then start it again": two daemons.
- `dlq drop` (documented to work beside other runs) during a `dlq retry` still had the dropped letter sent.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

import connector.dlq as dlq
from connector.app import Connector
from connector.commands import drop_dead_letters
from connector.settings import load_settings
from state import DeadLetters
from state.lock import StateInUse, StateLock, lock_holder
from tests.conftest import SLUG, cli, write_config, write_orders


def _linked(tmp_path: Path) -> tuple[Path, Path]:
    """The state file moved to ``real``, its old place ``moved/state.db`` a symlink to it."""
    real = tmp_path / "state.db"
    real.touch()
    (tmp_path / "moved").mkdir()
    link = tmp_path / "moved" / "state.db"
    os.symlink(real, link)
    return real, link


def test_a_state_file_reached_through_a_symlink_meets_the_daemons_lock(tmp_path: Path, sandbox) -> None:
    real, link = _linked(tmp_path)
    config = write_config(tmp_path, sandbox.url)
    config.write_text(config.read_text().replace(f'path = "{real}"', f'path = "{link}"'))
    write_orders(tmp_path / "files", "orders_001.csv", [1, 2])
    with StateLock(real, "run"):  # the daemon, configured with the real path
        done = cli(config, "sync")
        assert done.returncode == 75, done.stderr
        assert f"state file {link} (that is {real}) is in use by pid {os.getpid()} (run)" in done.stderr, done.stderr
        assert lock_holder(link, here="this process") == "this process"
    assert sandbox.orders(SLUG) == {}  # nothing sent beside the daemon
    assert not (tmp_path / "moved" / "state.db.lock").exists()


def test_a_symlinked_lock_holder_is_seen_by_a_probe_through_the_real_path(tmp_path: Path) -> None:
    real, link = _linked(tmp_path)
    with StateLock(link, "sync"):
        with pytest.raises(StateInUse, match=r"state file .*state\.db is in use by pid"):
            StateLock(real, "run").acquire()


def test_a_second_run_is_told_a_daemon_already_serves_the_file(tmp_path: Path, sandbox) -> None:
    config = write_config(tmp_path, sandbox.url)
    with StateLock(tmp_path / "state.db", "run"):
        second = cli(config, "run")
        sync = cli(config, "sync")
    assert second.returncode == 75, second.stderr
    assert "a daemon already serves this state file, so there is nothing to start" in second.stderr, second.stderr
    assert "start it again" not in second.stderr, second.stderr
    assert sync.returncode == 75 and "run this, then start it again" in sync.stderr, sync.stderr  # unchanged


def test_a_letter_dropped_while_retry_rereads_is_not_sent(tmp_path: Path, sandbox, monkeypatch) -> None:
    config = write_config(tmp_path, sandbox.url)
    files = tmp_path / "files"
    write_orders(files, "orders_001.csv", [5, 6])
    sandbox.refuse_order("6", 422, "invalid_payload")
    connector = Connector(load_settings(config))
    connector.sync()
    path = write_orders(files, "orders_002.csv", [7])  # a source letter too: `dlq retry` reads its file again
    path.write_text(path.read_text().replace("7,#7,2026-11-20T09:15:00+01:00", "7,#7,yesterday"))
    connector.sync()
    with connector.db.read() as conn:
        rows = DeadLetters(conn).list()
    connector.close()
    karla_letter = next(row.id for row in rows if row.stage == "karla")
    sandbox.heal()
    reread = dlq._reread

    def reread_while_the_operator_drops(*args: object, **kwargs: object) -> list[int]:  # another terminal
        done = reread(*args, **kwargs)
        assert drop_dead_letters(load_settings(config), [karla_letter]) == (1, [])
        return done

    monkeypatch.setattr(dlq, "_reread", reread_while_the_operator_drops)
    said = io.StringIO()
    dlq.retry_dead_letters(load_settings(config), None, Console(file=said, width=300))
    assert "6" not in sandbox.orders(SLUG), said.getvalue()
    assert f"not sent: letter(s) {karla_letter}, dropped (`dlq drop`) while this command ran" in said.getvalue()
    assert "queued 0 dead letter(s) again" in said.getvalue()
