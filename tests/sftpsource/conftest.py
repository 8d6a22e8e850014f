from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sftpsource.server import SftpServer


@pytest.fixture()
def sftp_root(tmp_path: Path) -> Path:
    root = tmp_path / "remote"
    (root / "exports").mkdir(parents=True)
    return root


@pytest.fixture()
def server(sftp_root: Path) -> Iterator[SftpServer]:
    srv = SftpServer(sftp_root).start()
    yield srv
    srv.stop()
