"""Which Karla the deliveries in a state file went to (``models.KarlaTarget``, one row).

``delivered`` says what *a* Karla acknowledged; a file the sandbox filled, pointed at the real Karla, took every
order the sandbox had for sent. The delivery side notes the Karla once per drain that delivers, and whether it
was the sandbox: the sandbox marks its answers (``connector.karla.client.SANDBOX_HEADER``), so neither a real
Karla behind a local tunnel nor a sandbox reached by another name is mistaken by its address. `sync`, `run` and
`check` compare the note with ``[karla]``, and delivery refuses a real Karla's answer for a sandbox's file
(``connector.going_live``).
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
    sandbox: bool  # the sandbox acknowledged deliveries in this file
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
    """A Karla on loopback: a sandbox restarted on another port, or the real Karla through a local tunnel."""
    return is_loopback(urlsplit(base_url).hostname)


def note(conn: Connection, base_url: str, username: str, sandbox: bool, now: float) -> NotedKarla | None:
    """Record the Karla that acknowledged a delivery (``sandbox``: its answer bore the sandbox's header); returns
    the note it replaced, if any. Written only when the Karla differs from the one noted. A sandbox's note is
    never replaced by a real Karla's: the file still holds what the sandbox took (delivery refuses such an
    answer before this, ``connector.going_live``); a real Karla's note replaced by the sandbox's is the caller's
    to say aloud."""
    url, was = normalised(base_url), noted(conn)
    if was is not None and ((was.base_url, was.username, was.sandbox) == (url, username, sandbox)
                            or (was.sandbox and not sandbox)):
        return None
    conn.exec_driver_sql("INSERT OR REPLACE INTO karla_target (id, base_url, username, sandbox, since) "
                         "VALUES (1, ?, ?, ?, ?)", (url, username, sandbox, now))
    return was


def noted(conn: Connection) -> NotedKarla | None:
    """The Karla noted, or None: nothing delivered since the upgrade to schema 13, or a file older than it
    (read read-only, where the table may not exist yet)."""
    try:
        row = conn.exec_driver_sql("SELECT base_url, username, sandbox, since FROM karla_target WHERE id = 1").first()
    except OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return NotedKarla(row[0], row[1], bool(row[2]), row[3]) if row is not None else None
