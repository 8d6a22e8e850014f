"""sd_notify without libsystemd: one datagram per message to ``$NOTIFY_SOCKET``.

Under ``Type=notify`` systemd waits for ``READY=1`` before it considers the service started, restarts it
when ``WATCHDOG=1`` stops arriving within ``WatchdogSec``, and shows ``STATUS=`` in ``systemctl status``.
Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op, and a failed send is never fatal.
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["Notifier", "watchdog_interval"]

log = logging.getLogger(__name__)


def _address(raw: str) -> str | bytes:
    return b"\0" + raw[1:].encode() if raw.startswith("@") else raw  # "@name": Linux abstract namespace


class Notifier:
    def __init__(self, socket_path: str | None = None) -> None:
        self.path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines; keys are upper-cased (``ready="1"`` → ``READY=1``)."""
        if not self.path:
            return False
        message = "\n".join(f"{key.upper()}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)  # a full receiver queue must never stall the daemon's main loop
                sock.connect(_address(self.path))
                sock.send(message)
            return True
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.path, exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify(ready="1", **({"status": status} if status else {}))

    def watchdog(self) -> bool:
        return self.notify(watchdog="1")

    def stopping(self) -> bool:
        return self.notify(stopping="1")

    def status(self, text: str) -> bool:
        return self.notify(status=text)


def watchdog_interval() -> float | None:
    """Half of ``WATCHDOG_USEC`` in seconds, if the watchdog is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000 / 2
    except ValueError:
        return None
