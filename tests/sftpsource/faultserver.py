"""``SftpServer`` with faults a real server shows: a file it refuses to open, a slow login, a hook on read.

``refuse[name] = "deny"`` answers opening that file with "permission denied" (SSH_FX_PERMISSION_DENIED),
``"fail"`` with SSH_FX_FAILURE (what a Windows server says for a file its writer still has locked).
``auth_delay`` holds every login for that many seconds; ``on_read`` runs once before the next read is
answered; ``read_delay`` holds every read. Adapted from the SFTP fault review's server.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh

from tests.sftpsource.server import SftpServer

__all__ = ["FaultServer"]


class FaultServer(SftpServer):
    def __init__(self, root: Path, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.refuse: dict[str, str] = {}
        self.auth_delay = 0.0
        self.read_delay = 0.0
        self.on_read: Callable[[], None] | None = None
        self.reads = 0

    def _answer_login(self, ok: bool) -> Any:
        if not self.auth_delay:
            return ok

        async def later() -> bool:
            await asyncio.sleep(self.auth_delay)
            return ok

        return later()

    def _before_open(self, path: bytes) -> None:
        kind = next((k for name, k in self.refuse.items() if path.endswith(name.encode())), None)
        if kind == "deny":
            raise PermissionError(errno.EACCES, "Permission denied")
        if kind == "fail":
            raise asyncssh.SFTPFailure("The process cannot access the file because it is being used by another process")

    def _answer_read(self, answer: Callable[[], bytes]) -> Any:
        self.reads += 1
        hook, self.on_read = self.on_read, None
        if hook:
            hook()
        if not self.read_delay:
            return answer()

        async def later() -> bytes:
            await asyncio.sleep(self.read_delay)
            return answer()

        return later()
