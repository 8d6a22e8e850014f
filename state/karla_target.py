"""Which Karla the deliveries in a state file went to (``models.KarlaTarget``, one row).

``delivered`` says what *a* Karla acknowledged; a file the sandbox filled, pointed at the real Karla, took every
order the sandbox had for sent. The delivery side notes the Karla once per drain that delivers (the row changes
only when the Karla does, see ``note``); `sync`, `run` and `check` compare it with ``[karla]`` (``connector.going_live``).
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from connector.loopback import is_loopback

__all__ = ["NotedKarla", "normalised", "note", "noted", "on_this_machine"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class NotedKarla(NamedTuple):
    base_url: str
    username: str
    since: float


def normalised(base_url: str) -> str:
    """The same Karla written two ways is one: case of scheme and host, a default port, a trailing slash."""
    parts = urlsplit(base_url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:  # not a port: keep the text as it is (the settings refuse such a URL anyway)
        return base_url.strip().rstrip("/")
    host = f"[{host}]" if ":" in host else host
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def on_this_machine(base_url: str) -> bool:
    """A Karla on loopback: the sandbox or a test server, whose acknowledgements the real Karla never saw."""
    return is_loopback(urlsplit(base_url).hostname)


def note(conn: Connection, base_url: str, username: str, now: float) -> None:
    """Record the Karla that acknowledged a delivery: written only when it differs from the one noted. A Karla
    on this machine stays noted when one elsewhere acknowledges (`dlq retry`, which is not refused): the file
    still holds what the sandbox took, and `sync` must go on saying so."""
    url, was = normalised(base_url), noted(conn)
    if was is not None and ((was.base_url, was.username) == (url, username)
                            or (on_this_machine(was.base_url) and not on_this_machine(url))):
        return
    conn.exec_driver_sql("INSERT OR REPLACE INTO karla_target (id, base_url, username, since) VALUES (1, ?, ?, ?)",
                         (url, username, now))


def noted(conn: Connection) -> NotedKarla | None:
    """The Karla noted, or None: nothing delivered since the upgrade to schema 13, or a file older than it
    (read read-only, where the table may not exist yet)."""
    try:
        row = conn.exec_driver_sql("SELECT base_url, username, since FROM karla_target WHERE id = 1").first()
    except OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return NotedKarla(*row) if row is not None else None
