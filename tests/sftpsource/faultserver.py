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

    async def _listen(self, port: int = 0) -> None:
        outer = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: Any) -> None:
                outer.connections += 1
                outer._open.add(conn)
                self.conn = conn

            def connection_lost(self, exc: Exception | None) -> None:
                outer._open.discard(self.conn)

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> Any:
                ok = username == outer.user and password == outer.password
                if not outer.auth_delay:
                    return ok

                async def later() -> bool:
                    await asyncio.sleep(outer.auth_delay)
                    return ok

                return later()

            def public_key_auth_supported(self) -> bool:
                return bool(outer.client_keys)

            def validate_public_key(self, username: str, key: Any) -> bool:
                line = key.export_public_key("openssh").decode().split()[1]
                return username == outer.user and any(line == k.split()[1] for k in outer.client_keys)

        class Files(asyncssh.SFTPServer):
            def __init__(self, chan: Any) -> None:
                super().__init__(chan, chroot=str(outer.root).encode())

            def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
                kind = next((k for name, k in outer.refuse.items() if path.endswith(name.encode())), None)
                if kind == "deny":
                    raise PermissionError(errno.EACCES, "Permission denied")
                if kind == "fail":
                    raise asyncssh.SFTPFailure("The process cannot access the file because it is being used by another process")
                return super().open(path, pflags, attrs)

            def read(self, file_obj: Any, offset: int, size: int) -> Any:
                outer.reads += 1
                hook, outer.on_read = outer.on_read, None
                if hook:
                    hook()
                if not outer.read_delay:
                    return super().read(file_obj, offset, size)

                async def later() -> bytes:
                    await asyncio.sleep(outer.read_delay)
                    return super(Files, self).read(file_obj, offset, size)

                return later()

        self._server = await asyncssh.listen(
            "127.0.0.1", port, server_host_keys=[self.host_key, *self.extra_host_keys], server_factory=Server, sftp_factory=Files, allow_scp=False,
        )
        self.port = self._server.sockets[0].getsockname()[1]
