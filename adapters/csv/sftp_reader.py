"""Reading one file of an SFTP folder (``adapters.csv.sftp``) as a stream, pipelined but with bounded memory.

Apart from the folder because it is a concern of its own: paramiko's read-ahead has to be held in windows
(see ``SftpReader``), and an error mid-file has to be told apart as the server's refusal of that file
or a lost connection. The folder keeps the connection; the reader asks it (``_refused``, ``_drop``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from adapters.csv.files import Unreadable
from adapters.csv.hostkeys import NETWORK_ERRORS
from connector.errors import RetryableError

if TYPE_CHECKING:
    from adapters.csv.sftp import SftpFolder

__all__ = ["SftpReader", "reason"]


class SftpReader:
    """A streaming file with bounded read-ahead; network errors become ``RetryableError``.

    paramiko's ``prefetch()`` bounds the requests in flight, not the answers waiting to be read: with a
    consumer slower than the link it buffers the whole file (we saw 19 MB of a 20 MB file). So the file is
    read in windows: each window's requests are pipelined, the next window is asked for only when this
    one has been consumed. Memory stays near one window, throughput near the link's.
    """

    WINDOW = 1 << 20
    _BLOCK = 32768  # paramiko's largest read request

    def __init__(self, handle: Any, owner: SftpFolder, name: str, size: int) -> None:
        self.handle, self.owner, self.name, self.size = handle, owner, name, size
        self.requested = 0
        self.blocks: Iterator[tuple[int, bytes]] = iter(())
        self.pending = bytearray()  # grows and shrinks in place: bytes would be copied whole on every block

    def read(self, size: int = -1) -> bytes:
        try:
            if size < 0:
                return b"".join(iter(lambda: self._read(1 << 16), b""))
            return self._read(size)
        except OSError as exc:
            if self.owner._refused(exc):
                raise Unreadable(f"SFTP {self.owner.where}: the server refused to read {self.name} in folder {self.owner.root}: {exc}") from None
            self.owner._drop()
            raise RetryableError(f"SFTP {self.owner.where}: connection lost while reading {self.name}: {reason(exc, self.owner.settings.timeout_seconds)}") from None
        except NETWORK_ERRORS as exc:
            self.owner._drop()
            raise RetryableError(f"SFTP {self.owner.where}: connection lost while reading {self.name}: {reason(exc, self.owner.settings.timeout_seconds)}") from None

    def _read(self, size: int) -> bytes:
        while len(self.pending) < size:
            asked, block = next(self.blocks, (0, None))
            if block is not None:
                self.pending += block
                if len(block) < asked:
                    # The file ended early: rewritten smaller since it was opened. paramiko would wait for the
                    # answers to the requests past its end until the timeout; the caller's re-stat sees the change.
                    self.blocks, self.size = iter(()), self.requested
            elif self.requested < self.size:
                self._ask_next_window()
            else:
                break
        data = bytes(self.pending[:size])
        del self.pending[:size]
        return data

    def _ask_next_window(self) -> None:
        end = min(self.size, self.requested + self.WINDOW)
        chunks = [(start, min(self._BLOCK, end - start)) for start in range(self.requested, end, self._BLOCK)]
        self.blocks = zip((n for _, n in chunks), self.handle.readv(chunks, max_concurrent_prefetch_requests=len(chunks)))
        self.requested = end

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(1 << 16), b"")


def reason(exc: BaseException, seconds: float) -> str:
    """A timeout's text is empty (``socket.timeout()``): say what happened instead."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {seconds:g}s without an answer (timeout_seconds)"
    return str(exc) or type(exc).__name__
