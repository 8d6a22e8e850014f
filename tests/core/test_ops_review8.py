"""Review ops8: a failing delivery's "since" survives a change of wording, a read-only state folder gets the
advice that fits it, the text log's time carries the date, and a JSON refusal is shaped like the JSON log."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.logs import TextFormatter, register_secrets
from state import Runs, open_state
from state.lock import StateLock


def test_failing_since_survives_a_change_of_wording_during_one_outage(tmp_path: Path) -> None:
    db = open_state(tmp_path / "s.db")
    with db.transaction() as conn:
        runs = Runs(conn)
        runs.delivered(1000.0, 1030.0, {}, "Karla API unavailable after retries: Karla bulk: 503 upstream (request id a1)")
        runs.delivered(1060.0, 1090.0, {"dead": 1}, "Karla API unavailable after retries: [Errno 111] Connection refused")
        runs.delivered(1120.0, 1150.0, {}, "Karla API unavailable after retries: Karla bulk: 503 upstream (request id b2)")
        last = runs.last_delivery()
        count = conn.exec_driver_sql("SELECT COUNT(*) FROM run WHERE kind = 'deliver'").scalar()
    assert last is not None and count == 1
    assert (last["status"], last["started_at"], last["finished_at"], last["dead"]) == ("failed", 1000.0, 1150.0, 1)
    assert last["error"].endswith("(request id b2)")  # the newest error: what is wrong now


def test_a_read_only_state_folder_is_named_with_the_systemd_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(path: object, *args: object) -> int:  # a ro bind mount, as root could not make one here
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr("state.lock.os.open", read_only)
    with pytest.raises(ConfigError) as refused:
        StateLock(tmp_path / "state.db", "run").acquire()
    said = str(refused.value)
    assert "read-only file system" in said and "ReadWritePaths=" in said and "StateDirectory=" in said, said
    assert "check its mode" not in said  # no mode to fix on a read-only mount


def test_a_text_log_line_carries_the_date_and_offset() -> None:
    record = logging.LogRecord("connector", logging.INFO, __file__, 1, "daemon started", (), None)
    line = TextFormatter().format(record)
    assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2} INFO    daemon started$", line), line


def test_a_json_refusal_is_one_line_shaped_like_the_json_log() -> None:
    from connector.logs import json_line

    register_secrets(["s3cret-key-ops8"])
    line = json_line("port in use\nnext s3cret-key-ops8")
    entry = json.loads(line)
    assert "\n" not in line and set(entry) == {"ts", "level", "logger", "msg"}
    assert entry["level"] == "error" and entry["msg"] == "port in use\nnext ***"
    assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", entry["ts"]), entry
