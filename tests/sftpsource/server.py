"""A real SFTP server on loopback for tests: asyncssh in a background thread, rooted in a temp folder.

Knobs: accepted password and public keys, the host key (restart with another to simulate a changed
key), more host keys of other types (``extra_host_keys``: a server offering ed25519 and ECDSA), ``drop_after_bytes`` (close the connection once a client has read that much of one file), and a
count of connections. Nothing is mocked: the client under test speaks real SSH to it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh

__all__ = ["SftpServer"]


class SftpServer:
    def __init__(self, root: Path, *, user: str = "merchant", password: str = "s3cret-pass", client_keys: list[str] | None = None,
                 extra_host_keys: tuple[str, ...] = ()) -> None:
        self.root, self.user, self.password = root, user, password
        self.client_keys = client_keys or []  # OpenSSH public key lines
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.extra_host_keys = [asyncssh.generate_private_key(algorithm) for algorithm in extra_host_keys]
        self.drop_after_bytes: int | None = None
        self.connections = 0
        self.bytes_read = 0  # file content sent to clients, over all sessions
        self._open: set[Any] = set()  # live connections, closed on stop so no session task is left pending
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Any = None

    # -- facts a test needs ----------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return self.fingerprint_of(self.host_key)

    @staticmethod
    def fingerprint_of(key: Any) -> str:
        blob = key.export_public_key("openssh").split()[1]
        return "SHA256:" + base64.b64encode(hashlib.sha256(base64.b64decode(blob)).digest()).decode().rstrip("=")

    def known_hosts_line(self, key: Any = None) -> str:
        public = (key or self.host_key).export_public_key("openssh").decode().split()
        return f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n"

    # -- hooks a fault-injecting subclass overrides (tests/sftpsource/faultserver.py) -------------------
    def _answer_login(self, ok: bool) -> Any:
        """What a password login answers: ``ok``, or an awaitable of it (a slow server)."""
        return ok

    def _before_open(self, path: bytes) -> None:
        """Called before a file is opened; may raise what the server answers instead."""

    def _answer_read(self, answer: Callable[[], bytes]) -> Any:
        """A read's answer: ``answer()``, or an awaitable of it (a slow server)."""
        return answer()

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> SftpServer:
        if not self._thread.is_alive():
            self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=30)
        return self

    def restart_with_new_host_key(self) -> None:
        self._close()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        asyncio.run_coroutine_threadsafe(self._listen(self.port), self._loop).result(timeout=30)

    def stop(self) -> None:
        self._close()

        async def close_connections() -> None:
            for conn in list(self._open):
                conn.close()
                await conn.wait_closed()

        asyncio.run_coroutine_threadsafe(close_connections(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _close(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        if self._server is not None:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)

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
                return outer._answer_login(username == outer.user and password == outer.password)

            def public_key_auth_supported(self) -> bool:
                return bool(outer.client_keys)

            def validate_public_key(self, username: str, key: Any) -> bool:
                line = key.export_public_key("openssh").decode().split()[1]
                return username == outer.user and any(line == k.split()[1] for k in outer.client_keys)

        class Files(asyncssh.SFTPServer):
            def __init__(self, chan: Any) -> None:
                super().__init__(chan, chroot=str(outer.root).encode())
                self.sent = 0

            def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
                outer._before_open(path)
                return super().open(path, pflags, attrs)

            def read(self, file_obj: Any, offset: int, size: int) -> Any:
                def answer() -> bytes:
                    data = super(Files, self).read(file_obj, offset, size)
                    self.sent += len(data)
                    outer.bytes_read += len(data)
                    if outer.drop_after_bytes is not None and self.sent > outer.drop_after_bytes:
                        self.channel.get_connection().abort()
                    return data

                return outer._answer_read(answer)

        self._server = await asyncssh.listen(
            "127.0.0.1", port, server_host_keys=[self.host_key, *self.extra_host_keys], server_factory=Server, sftp_factory=Files, allow_scp=False,
        )
        self.port = self._server.sockets[0].getsockname()[1]
