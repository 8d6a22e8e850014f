"""One process per state file: an advisory ``flock`` on ``<state>.lock``, released by the kernel on exit.

Two daemons draining one outbox would send the same batch twice; the lock turns that into a clear
message at start instead. A crashed process never leaves a stale lock behind. The lock is named after the
state file's real path (symlinks resolved), as SQLite opens it: a state file moved and reached through a link
meets the same lock. Through a link, the lock beside the path as configured is taken and probed too: releases
before 0.2.0 lock that one, and their daemon may still run during an upgrade. Two names the lock cannot see through
(a hard link, the file itself bind-mounted into two containers) are not covered: mount its folder.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from pathlib import Path
from types import TracebackType

from connector import __version__
from connector.errors import ConfigError
from state.migrations import SCHEMA_VERSION

__all__ = [
    "EX_TEMPFAIL", "StateInUse", "StateLock", "StateNotMounted", "dangling_link", "legacy_lock_path", "lock_holder", "lock_path", "probe",
    "refusal",
]

EX_TEMPFAIL = 75  # sysexits.h: "try again later"


class StateInUse(ConfigError):
    """Another process holds the state file: not a configuration error, so its own exit code (75). With 2,
    systemd's RestartPreventExitStatus=2 would leave the service down for good after a restart that met a
    manual `sync --full` still holding the lock; 75 is restarted like any passing failure."""

    exit_code = EX_TEMPFAIL


# An OSError that blames the configured path (a folder, no rights, a read-only mount), not a passing fault such
# as a full disk: only these become a ConfigError (exit 2, which systemd does not restart).
PATH_ERRNOS = frozenset({errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT})


# Written after "pid N (purpose)" in the lock: which release holds it, and the schema it upgrades the file to. An
# upgrade guard (``state.db``) waits for a holder of this schema, which upgrades the file itself, instead of calling
# it an older release; 0.1.0 shows the whole line in its refusal, which reads as well.
_SIGNATURE = f"karla-connector {__version__} (schema {SCHEMA_VERSION})"
_SIGNED = re.compile(r" karla-connector (\S+) \(schema (\d+)\)$")

# The lock files this process holds: a probe (``lock_holder``) opens its own descriptor, which a lock held here would
# refuse too; `dlq retry` opens the state file (and its schema guard probes) under its own lock.
_HELD_HERE: set[str] = set()


def lock_path(state_path: Path | str) -> Path:
    """``<state>.lock`` beside the real state file: a link to it (the file moved, a second config naming it
    through the link) must meet the same lock, or two processes drain one outbox. The real folder is where
    SQLite writes ``-wal`` and ``-shm`` too. A state file not created yet resolves as far as its folders do."""
    return Path(f"{os.path.realpath(state_path)}.lock")


def legacy_lock_path(state_path: Path | str) -> Path | None:
    """``<state>.lock`` beside the path as configured, which releases before 0.2.0 lock (a link not followed);
    None when that is the same file as ``lock_path``'s (no link on the way, or only a linked folder)."""
    named = Path(f"{os.path.abspath(state_path)}.lock")
    return None if os.path.realpath(named) == str(lock_path(state_path)) else named


class StateNotMounted(ConfigError):
    """The state path leads through a link to nothing (a volume not mounted yet, an NFS share at boot): exit 3,
    which systemd retries, not 2, which it does not (``RestartPreventExitStatus=2``): it passes once mounted."""

    exit_code = 3


def dangling_link(state_path: Path | str) -> str | None:
    """Why the state path cannot be used when it (or a folder on its way) is a link to nothing, e.g. into a volume
    not mounted: following it would create folders where the volume belongs, then fail with "File exists". A link
    to a state file not created yet, in a folder that exists, is fine: the file is created there."""
    path = Path(os.path.abspath(state_path))
    for link in (path, *path.parents):
        if link.is_symlink() and not link.exists():
            if link == path and Path(os.path.realpath(link)).parent.is_dir():
                continue
            which = f"{link}" if link == path else f"{path}: its folder {link}"
            return (f"[state].path (KARLA_CONNECTOR_STATE__PATH) {which} is a link to {os.path.realpath(link)}, which "
                    "does not exist (an unmounted volume?): mount it or fix the link; nothing was created")
    return None


class StateLock:
    """Both locks or neither: the real file's, and, through a link, the one an older release's daemon holds."""

    def __init__(self, state_path: Path | str, purpose: str) -> None:
        self.state = Path(state_path)
        self.path = lock_path(state_path)
        self.legacy = legacy_lock_path(state_path)
        self.purpose = purpose
        self._fd: int | None = None
        self._legacy_fd: int | None = None

    def acquire(self) -> StateLock:
        dangling = dangling_link(self.state)
        if dangling:
            raise StateNotMounted(dangling)
        self._fd = self._take(self.path)
        if self.legacy is not None:
            try:
                self._legacy_fd = self._take(self.legacy, legacy=True)
            except BaseException:
                self.release()
                raise
        return self

    def _take(self, path: Path, legacy: bool = False) -> int | None:
        """The lock ``path``, written with who holds it. A legacy lock this user may not create or open (a
        read-only folder beside the link) is skipped: an older release's daemon of this user could not hold it."""
        try:
            if not legacy:
                path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # a read-only or foreign folder: the setting is wrong, not the program
            if exc.errno not in PATH_ERRNOS:
                raise  # a full disk, too many open files: may pass, exit 4 lets systemd restart
            if legacy:
                return None
            raise ConfigError(refusal(path, exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _shown(_read(fd))
            os.close(fd)
            older = f" (through {path}, the lock of releases before 0.2.0)" if legacy else ""
            raise StateInUse(
                f"state file {self._named()} is in use by {_describe(holder)}{older}; only one karla-connector may use "
                "it at a time" + _hint(holder, self.purpose)
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} ({self.purpose}) {_SIGNATURE}".encode())
        _HELD_HERE.add(str(path))
        return fd

    def _named(self) -> str:
        """The state path as configured, and the real file when it goes through a link: the holder's config may name
        either."""
        real = str(self.path)[:-5]
        return str(self.state) if real == os.path.abspath(self.state) else f"{self.state} (that is {real})"

    def release(self) -> None:
        for path, fd in ((self.legacy, self._legacy_fd), (self.path, self._fd)):
            if fd is not None:
                _HELD_HERE.discard(str(path))
                os.close(fd)
        self._fd = self._legacy_fd = None

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def lock_holder(state_path: Path | str, here: str | None = None) -> str | None:
    """Who holds the state file's lock ("pid N (run)"), None when nobody does, ``here`` when this process does
    (by default None: no other process), "" when it cannot be told (the lock file is another user's). A
    non-blocking probe for commands that work beside the daemon (``status``, ``dlq list``). The probe holds a shared lock for an instant: a process starting
    right then is refused with exit 75, which systemd restarts. Through a link, an older release's lock beside the
    path as configured is probed too (``legacy_lock_path``)."""
    holder, _schema = probe(state_path, here)
    return holder


def probe(state_path: Path | str, here: str | None = None) -> tuple[str | None, int | None]:
    """``lock_holder``, and the schema its holder's release upgrades the file to (None: it did not say, as
    releases before 0.2.0 do not)."""
    holder, schema = _probe(lock_path(state_path), here)
    legacy = legacy_lock_path(state_path)
    if holder is None and legacy is not None:
        holder, schema = _probe(legacy, here)
        return holder or None, schema  # one this user may not open: ``StateLock`` skips it too
    return holder, schema


def _probe(path: Path, here: str | None) -> tuple[str | None, int | None]:
    if str(path) in _HELD_HERE:
        return here, SCHEMA_VERSION
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None, None
    except OSError:
        return "", None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = _read(fd)
        signed = _SIGNED.search(text)
        return _describe(_shown(text)), int(signed[2]) if signed else None
    finally:
        os.close(fd)  # also lets go of the shared lock, if taken
    return None, None


def _read(fd: int) -> str:
    return os.read(fd, 200).decode(errors="replace").strip() or "another process"


def _shown(holder: str) -> str:
    """The holder for a message: this release's own signature left out (it says nothing), another's kept."""
    return holder.removesuffix(f" {_SIGNATURE}")


def _describe(holder: str) -> str:
    """The holder as written, and whether it still runs: a sync killed while its delivery process sends
    leaves the lock with that process (it inherited it), which lets go once its request is answered."""
    match = re.match(r"pid (\d+)", holder)
    if match is None or _alive(int(match[1])):
        return holder
    return (f"{holder}, which is not running here: it has ended and a process it started holds the lock until it ends "
            "(a sync's delivery process finishing the request it has on the wire), or it runs in another container")


def refusal(path: Path, exc: OSError) -> str:
    """Why the lock file cannot be opened, and what to fix: said alike by ``StateLock`` and by ``check``."""
    if exc.errno == errno.EROFS:  # a read-only mount (ProtectSystem=strict, a ro volume): no mode or owner to fix
        return (f"cannot create {path} ({exc.strerror or exc}): the folder of [state].path (KARLA_CONNECTOR_STATE__PATH) is "
                "on a read-only file system: under systemd add ReadWritePaths= for that folder, or keep the state in "
                "StateDirectory=; in a container, mount its volume read-write")
    return f"cannot create {path} ({exc.strerror or exc}): {_whose(path)}"


def _whose(path: Path) -> str:
    """What to fix: a lock file left by a run as another user (a `sync` as root beside the service) is not the
    folder's fault."""
    try:
        owner = path.stat().st_uid
    except OSError:
        return "the folder of [state].path (KARLA_CONNECTOR_STATE__PATH) must be writable by this user"
    if owner == os.geteuid():
        return "this user may not open it (check its mode and the folder's)"
    try:
        import pwd

        name = pwd.getpwuid(owner).pw_name
    except (KeyError, ImportError):
        name = f"uid {owner}"
    return (f"it belongs to {name}, not to this user (uid {os.geteuid()}): a run as another user left it; give it "
            "(and the state file) back to the user the service runs as, e.g. with chown")


def _hint(holder: str, purpose: str) -> str:
    """What to do when the daemon holds the lock: `sync` and `dlq retry` send to Karla, which only one process may.
    A second `run` is not needed at all: "run this, then start it again" would leave two daemons."""
    if "(run)" not in holder:
        return ""
    if purpose == "run":
        return ("; a daemon already serves this state file, so there is nothing to start (`status` shows its "
                "work); to run this one in its place, stop that one first (e.g. `systemctl stop karla-connector`, "
                "or its container)")
    return ("; stop the service first (e.g. `systemctl stop karla-connector`, or stop its container), run this, "
            "then start it again (status, dlq list and dlq drop work beside it)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
