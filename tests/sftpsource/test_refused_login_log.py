"""A refused SFTP login in the daemon: one ERROR that does not claim the source "stopped" (it logs in again each
poll), DEBUG while the same refusal lasts, INFO once it logs in, and another failure said again at ERROR (found by
the ops6 review: the same ERROR every poll)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from connector.app import Connector
from connector.daemon import Daemon
from connector.settings import load_settings
from tests.sftpsource.server import SftpServer
from tests.sftpsource.test_sftp import sftp_config


def test_a_refused_login_is_an_error_once_and_a_new_failure_is_said_again(
        sftp_root: Path, tmp_path: Path, sandbox, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    server = SftpServer(sftp_root).start()  # not the fixture's: this test stops it
    up = True
    config, env = sftp_config(server, tmp_path, sandbox.url)
    (name, _), = env.items()
    monkeypatch.setenv(name, "not-the-password-9")
    connector = Connector(load_settings(config), sleep=lambda _: None)
    daemon = Daemon(connector)
    rt = connector.sources["warehouse"]
    try:
        with caplog.at_level(logging.DEBUG, logger="connector.daemon"):
            before = server.connections
            for _ in range(3):
                daemon._sync_job(rt, False)
            assert server.connections - before == 3  # tried again every poll, as the line says
            server.password = "not-the-password-9"  # the server's account fixed to match
            daemon._sync_job(rt, False)
            server.stop()  # then the server goes away: another failure, said at ERROR
            up = False
            daemon._sync_job(rt, False)
            daemon._sync_job(rt, False)
        said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "connector.daemon"]
        levels = [(level, message.split(":")[0]) for level, message in said]
        assert levels == [("ERROR", "source warehouse failed, needs a fix (tried again every poll)"),
                          ("DEBUG", "source warehouse failed, needs a fix (tried again every poll)"),
                          ("DEBUG", "source warehouse failed, needs a fix (tried again every poll)"),
                          ("INFO", "source warehouse read again"),
                          ("ERROR", levels[4][1]), ("DEBUG", levels[4][1])], said
        assert "authentication failed for user 'merchant'" in said[0][1] and "stopped" not in said[0][1]
        assert said[4][1] != said[0][1] and "not-the-password-9" not in caplog.text
    finally:
        connector.close()
        if up:
            server.stop()
