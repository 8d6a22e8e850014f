"""A source that fails every poll says so once while the failure lasts, not once a poll (found by the ops6 and soak6
reviews: a missing folder polled every second logged the same ERROR 22 times in 22 s, claiming the source was
"stopped" though it was polled again). Repeats go to DEBUG; a different failure is said again; a read that works
again says so at INFO. Metrics and /readyz count every poll as before."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from connector.app import Connector
from connector.daemon import Daemon
from connector.job_errors import Episodes
from connector.settings import load_settings
from tests.conftest import write_config, write_orders


def _said(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "connector.daemon"]


def test_a_missing_folder_is_an_error_once_while_it_lasts(tmp_path: Path, sandbox, caplog: pytest.LogCaptureFixture) -> None:
    files = tmp_path / "files"
    config = write_config(tmp_path, sandbox.url, files=files)
    connector = Connector(load_settings(config), sleep=lambda _: None)
    daemon = Daemon(connector)
    rt = connector.sources["warehouse"]
    try:
        files.rename(tmp_path / "unmounted")  # an unmounted share
        with caplog.at_level(logging.DEBUG, logger="connector.daemon"):
            for _ in range(3):
                daemon._sync_job(rt, False)
            (tmp_path / "unmounted").rename(files)  # mounted again
            write_orders(files, "orders_001.csv", [1])
            daemon._sync_job(rt, False)
            daemon._sync_job(rt, False)  # nothing more to say
            files.rename(tmp_path / "unmounted")  # gone again: a new episode, said at ERROR again
            daemon._sync_job(rt, False)
        said = _said(caplog)
        failed = [(level, message) for level, message in said if message.startswith("source warehouse failed")]
        assert [level for level, _ in failed] == ["ERROR", "DEBUG", "DEBUG", "ERROR"], said
        message = failed[0][1]
        assert message.startswith("source warehouse failed, needs a fix (tried again every poll): folder ") and \
            "does not exist" in message and "stopped" not in message, message
        again = [(level, message) for level, message in said if "read again" in message]
        assert again == [("INFO", "source warehouse read again: the failure logged before has passed")], said
        fatal = daemon.metrics.runs.labels(source="warehouse", status="fatal")._value.get()
        assert fatal == 4  # every poll counted, as before
        assert daemon.readiness.check()[0] is True  # as before: a failure may pass (ready_max_failure_seconds)
    finally:
        connector.close()


def test_a_different_failure_is_a_new_episode(caplog: pytest.LogCaptureFixture) -> None:
    """Pure logic: the same key with another text (the folder found, then its file unreadable) is said again;
    ``say``'s episodes (Karla, a refused shop) stay one per key whatever their text."""
    episodes = Episodes(logging.getLogger("connector.daemon"))
    with caplog.at_level(logging.DEBUG, logger="connector.daemon"):
        for text in ("a", "a", "b", "b", "a"):
            episodes.tell("source:x", logging.ERROR, text)
        episodes.tell("source:y", logging.ERROR, "100% full")  # not %-formatted
        for text in ("c", "d"):
            episodes.say("karla", logging.ERROR, "%s", text)
    assert _said(caplog) == [("ERROR", "a"), ("DEBUG", "a"), ("ERROR", "b"), ("DEBUG", "b"), ("ERROR", "a"),
                             ("ERROR", "100% full"), ("ERROR", "c"), ("DEBUG", "d")]
    assert episodes.over("source:x") and not episodes.over("source:x") and episodes.over("karla")
