"""Going live after trying the sandbox: a state file a Karla on this machine filled is not the real Karla's.

The state file remembers what Karla acknowledged, not which Karla: used against the real Karla after the
sandbox, every order the sandbox had counted as sent, and nothing said so (`sync --full` too found them all
"unchanged"). The delivery side notes the Karla (``state.karla_target``); `sync`, `run` and `check` refuse
(exit 2) a file noted for a Karla on this machine (the sandbox, a test server) against one elsewhere. Karla
moving to another domain is no such case: its acknowledgements stand, said at INFO.
"""

from __future__ import annotations

import logging
import shlex
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.exc import DatabaseError

from connector.errors import ConfigError
from connector.settings import Settings
from state import StateDB
from state.db import read_only_uri
from state.karla_target import NotedKarla, normalised, noted, on_this_machine

__all__ = ["judge_opened", "judge_read_only", "sandbox_banner"]

log = logging.getLogger("connector")


def judge_opened(settings: Settings, db: StateDB) -> None:
    """For `sync` and `run`, once the state file is open (upgraded), before anything is read or sent."""
    with db.read() as conn:
        _judge(settings, Path(settings.state.path), noted(conn))


def judge_read_only(settings: Settings) -> None:
    """For `check`, which writes nothing: the file read as `status` reads it. A file that cannot be read so (not
    SQLite, commits waiting without their -shm) is left to the state file's own line of the report."""
    path = Path(settings.state.path)
    if not path.is_file():
        return
    try:
        uri = read_only_uri(path)
    except ConfigError:
        return
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))
    try:
        with engine.connect() as conn:
            found = noted(conn)
    except DatabaseError:
        return
    finally:
        engine.dispose()
    _judge(settings, path, found)


def _judge(settings: Settings, path: Path, was: NotedKarla | None) -> None:
    now, user = normalised(settings.karla.base_url), settings.karla.user
    if was is None or (was.base_url, was.username) == (now, user):
        return
    was_here, is_here = on_this_machine(was.base_url), on_this_machine(now)
    if was_here and not is_here:
        raise ConfigError(
            f"the state file {path} holds what Karla at {was.base_url} (user {was.username}), a server on this "
            f"machine such as the sandbox, acknowledged, but [karla] base_url is now {now}: with this file every order "
            f"that server has counts as sent and would never reach {now}. For this Karla set [state] path "
            "(KARLA_CONNECTOR_STATE__PATH) to a new file: the sources are then read again from their start (move CSV "
            f"files already in archive_folder back into the source's folder first); keep {path} for the sandbox"
        )
    if not (was_here and is_here):  # another domain, another API user: Karla's own acknowledgements stand
        log.info("the state file %s holds deliveries to Karla at %s (user %s); [karla] is now %s (user %s): what "
                 "the former acknowledged counts as delivered to the latter", path, was.base_url, was.username, now, user)


def sandbox_banner(url: str, base_url: str, user: str, api_key: str) -> list[str]:
    """What `karla-connector sandbox` prints once it listens: the lines to paste, and a state file of its own
    (going live with the sandbox's file is refused; ``_judge``)."""
    return [
        f"Karla sandbox on {url} (user {user!r}, key {api_key!r}); Ctrl-C stops it",
        f"  [karla]\n  base_url = \"{base_url}\"\n  username = \"{user}\"",
        "  # and a [state] path of its own (e.g. \"karla-sandbox.db\"): the real Karla later gets a new state file",
        # Not a real secret, but shown the way a real key is set: a newcomer who copies it keeps keys out of the file.
        f"  export KARLA_CONNECTOR_KARLA__API_KEY={shlex.quote(api_key)}   # in the shell that runs the connector",
    ]
