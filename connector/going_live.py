"""Going live after trying the sandbox: a state file the sandbox filled is not the real Karla's.

The state file remembers what Karla acknowledged, not which Karla: used against the real Karla after the
sandbox, every order the sandbox had counted as sent, and nothing said so (`sync --full` too found them all
"unchanged"). The delivery side notes the Karla and whether it was the sandbox, which marks its answers
(``state.karla_target``). `sync`, `run`, `check` and `dlq retry` refuse (exit 2) a file the sandbox filled against a Karla
elsewhere before anything is sent; against a Karla on this machine (a sandbox on another port, or the real one
through a local tunnel) delivery refuses at the first answer without the sandbox's mark (``sandbox_refusal``).
A real Karla's file moving to another address is no such case: its acknowledgements stand, said at INFO.
"""

from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path

from sqlalchemy.exc import DatabaseError

from connector.envsources import ENV_PREFIX
from connector.errors import ConfigError
from connector.settings import Settings
from state import StateDB
from state.db import read_only_engine
from state.karla_target import NotedKarla, normalised, noted, on_this_machine

__all__ = ["judge_opened", "judge_read_only", "sandbox_banner", "sandbox_refusal"]

log = logging.getLogger("connector")


def judge_opened(settings: Settings, db: StateDB) -> None:
    """For `sync`, `run` and `dlq retry`, once the state file is open (upgraded), before anything is read or sent."""
    with db.read() as conn:
        _judge(settings, Path(settings.state.path), noted(conn))


def judge_read_only(settings: Settings) -> None:
    """For `check`, which writes nothing: the file read as `status` reads it. A file that cannot be read so (not
    SQLite, commits waiting without their -shm) is left to the state file's own line of the report."""
    path = Path(settings.state.path)
    if not path.is_file():
        return
    try:
        engine = read_only_engine(path)
    except ConfigError:
        return
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
    if was.sandbox:  # elsewhere: refused now; on this machine: its answers tell (``connector.sender``)
        if now != was.base_url and not on_this_machine(now):
            raise ConfigError(sandbox_refusal(path, was, f"[karla] base_url is now {now}", now))
        return
    log.info("the state file %s holds deliveries to Karla at %s (user %s); [karla] is now %s (user %s): what "
             "the former acknowledged counts as delivered to the latter", path, was.base_url, was.username, now, user)


def sandbox_refusal(path: Path, was: NotedKarla, why: str, now: str) -> str:
    """Why a file the sandbox filled is refused for the Karla at ``now``, and the way out (README, "How delivery
    works"): under a service the variable, not [state].path, names the file."""
    variable = f"{ENV_PREFIX}STATE__PATH"
    if any(name.upper() == variable for name in os.environ):  # a systemd unit, a container: [state].path is not read
        where = f"{variable}, set in this environment (the service's unit or container), overrides [state].path: set it"
    else:
        where = "set [state] path"
    return (
        f"the state file {path} holds what the Karla sandbox at {was.base_url} (user {was.username}) acknowledged, "
        f"but {why}: the orders the sandbox acknowledged count as sent in this file and would never reach {now}. "
        f"Use a new state file for the real Karla: {where} to a new file (the sources are then read again from "
        "their start; move CSV files already in archive_folder back into the source's folder first) and keep "
        f"{path} for the sandbox. Sure it was never the sandbox? With the service stopped: "
        f"sqlite3 {shlex.quote(str(path))} \"DELETE FROM karla_target\""
    )


def sandbox_banner(url: str, base_url: str, user: str, api_key: str) -> list[str]:
    """What `karla-connector sandbox` prints once it listens: the keys to set (pasted into an empty file, valid
    TOML), and a state file of its own (going live with the sandbox's file is refused; ``_judge``)."""
    return [
        f"Karla sandbox on {url} (user {user!r}, key {api_key!r}); Ctrl-C stops it",
        f"  [karla]\n  base_url = \"{base_url}\"\n  username = \"{user}\"",
        # config.example.toml and `init` write a [karla] table already: a second header is refused by name
        "  # set these keys in your [karla] table (a config written by `init` has one: a second [karla] header is refused)",
        "  # and a [state] path of its own (e.g. \"karla-sandbox.db\"): the real Karla later gets a new state file",
        # Not a real secret, but shown the way a real key is set: a newcomer who copies it keeps keys out of the file.
        f"  export KARLA_CONNECTOR_KARLA__API_KEY={shlex.quote(api_key)}   # in the shell that runs the connector",
    ]
