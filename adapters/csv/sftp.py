"""An SFTP folder as a ``FileSource`` (paramiko); host keys are verified by ``adapters.csv.hostkeys``, files
are read by ``adapters.csv.sftp_reader``.

Network failures are ``RetryableError`` (the file stays unprocessed and is read on a later run);
credentials and host-key problems are ``ConfigError``.
"""

from __future__ import annotations

import errno
import logging
import posixpath
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import paramiko
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from adapters.csv.files import RemoteFile, Unreadable, is_safe, link_note, name_note, safe_folder, safe_name, skipped
from adapters.csv.hostkeys import NETWORK_ERRORS, HostKeys, fingerprint, pinned_fingerprint
from adapters.csv.keys import private_key
from adapters.csv.sftp_reader import SftpReader
from adapters.csv.sftp_reader import reason as _reason
from connector.errors import ConfigError, RetryableError

__all__ = ["SftpFolder", "SftpSettings", "fingerprint"]


class SftpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    password: SecretStr | None = Field(None, description="Password (better: env ..._SFTP__PASSWORD)")
    private_key: SecretStr | None = Field(None, description="Private key text (OpenSSH or PEM)")
    private_key_file: str | None = Field(None, description="Path of a private key file")
    passphrase: SecretStr | None = Field(None, description="Passphrase of the private key")
    known_hosts: str | None = Field(None, description="known_hosts file (default ~/.ssh/known_hosts)")
    host_key_fingerprint: str | None = Field(None, description='Pinned host key, "SHA256:..." as ssh-keygen -lf prints it (the prefix may be left out)')
    insecure_skip_host_key_check: bool = Field(False, description="Accept any host key (warns on every connect)")
    timeout_seconds: float = Field(30.0, gt=0, description="Connect and read timeout")

    @field_validator("host_key_fingerprint")
    @classmethod
    def _pin(cls, value: str | None) -> str | None:
        return None if value is None else pinned_fingerprint(value)


class _ReportedByUs(logging.Filter):
    """Drops paramiko's transport-thread ERROR records.

    The thread logs each failure (a refused host-key type, a dropped connection) as one record per
    traceback line, then raises it in the calling thread, where this module reports it in one line
    (``ConfigError``, ``RetryableError``): the ~40 lines before it only bury that line. paramiko's
    INFO and DEBUG records stay, for whoever turns them on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


_REPORTED_BY_US = _ReportedByUs()


def _quiet_paramiko() -> None:
    logger = logging.getLogger("paramiko.transport")
    if _REPORTED_BY_US not in logger.filters:
        logger.addFilter(_REPORTED_BY_US)


class SftpFolder:
    def __init__(self, host: str, port: int, user: str, root: str, settings: SftpSettings, log: Any = None) -> None:
        self.host, self.port, self.user, self.root = host, port, user, root or "/"
        self.settings = settings
        self.log = log or logging.getLogger(__name__)
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._keys = HostKeys(host, port, self.where, settings, self.log)
        self.connections = 0
        self.skipped: dict[str, str] = {}  # name -> why, of the last listing's entries not read (for `check`)

    @classmethod
    def from_url(cls, url: str, settings: SftpSettings, *, log: Any = None) -> SftpFolder:
        parts = urlsplit(url)
        if parts.password is not None:
            raise ConfigError("sftp url must not contain a password: set [sources.NAME.sftp] password or its environment variable")
        if not parts.hostname or not parts.username:
            raise ConfigError(f"sftp url {url!r}: expected sftp://user@host[:port]/folder")
        return cls(parts.hostname, parts.port or 22, unquote(parts.username), unquote(parts.path) or "/", settings, log)

    @property
    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"SftpFolder({self.where}{self.root})"

    # -- connection ----------------------------------------------------------------------------------
    def _client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._connect()
        assert self._sftp is not None
        return self._sftp

    def _connect(self) -> None:
        s = self.settings
        _quiet_paramiko()
        transport = self._keys.transport()
        try:
            self._authenticate(transport)
            self._sftp = paramiko.SFTPClient.from_transport(transport)
            self._sftp.get_channel().settimeout(s.timeout_seconds)
        except NETWORK_ERRORS as exc:
            transport.close()
            raise RetryableError(f"SFTP {self.where}: connection lost while logging in: {_reason(exc, s.timeout_seconds)}") from None
        except BaseException:
            transport.close()
            raise
        self._transport = transport
        self.connections += 1

    def _authenticate(self, transport: paramiko.Transport) -> None:
        s = self.settings
        try:
            if s.private_key or s.private_key_file:
                transport.auth_publickey(self.user, private_key(self.settings, self.where))
            elif s.password:
                transport.auth_password(self.user, s.password.get_secret_value())
            else:
                raise ConfigError(f"SFTP {self.where}: set a password or a private key in [sources.NAME.sftp]")
        except paramiko.AuthenticationException as exc:
            if "timeout" in str(exc).lower():  # the server did not answer in time: no verdict on the credentials
                raise RetryableError(f"SFTP {self.where}: the server did not answer the login of user {self.user!r} within "
                                     f"{s.timeout_seconds:g}s (timeout_seconds); tried again on the next run") from None
            raise ConfigError(f"SFTP {self.where}: authentication failed for user {self.user!r} (check the password or key)") from None

    def _drop(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = self._sftp = None

    @contextmanager
    def _call(self, what: str) -> Iterator[paramiko.SFTPClient]:
        client = self._client()
        try:
            yield client
        except (FileNotFoundError, PermissionError):
            raise  # the server's answer on a working connection: dropping it would only cost a reconnect
        except NETWORK_ERRORS as exc:
            self._drop()
            raise RetryableError(f"SFTP {self.where}: {what} failed: {_reason(exc, self.settings.timeout_seconds)}") from None

    def _refused(self, exc: OSError) -> bool:
        """Whether an error is the server's answer about one file (paramiko's status errors: an ``OSError``
        without errno, or ``EACCES``) on a connection still up, not a broken connection: only that file is
        skipped. paramiko's "Socket is closed" has no errno either, hence the check of the channel."""
        if isinstance(exc, (TimeoutError, ConnectionError)) or exc.errno not in (None, errno.EACCES):
            return False
        channel = self._sftp.get_channel() if self._sftp is not None else None
        return channel is not None and not channel.closed and self._transport is not None and self._transport.is_active()

    @contextmanager
    def _denied(self, what: str) -> Iterator[None]:
        """paramiko's "Permission denied" names neither the action nor the account: this does."""
        try:
            yield
        except PermissionError:
            raise PermissionError(errno.EACCES, f"permission denied {what} as user {self.user!r} in {self.root}") from None

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    # -- FileSource ----------------------------------------------------------------------------------
    def list(self) -> list[RemoteFile]:
        with self._call(f"listing {self.root}") as sftp:
            try:
                entries = sftp.listdir_attr(self.root)
            except FileNotFoundError:
                raise ConfigError(f"SFTP {self.where}: folder {self.root} does not exist") from None
            except PermissionError:
                # Retrying cannot help: the server's account lacks the right, so it is a setting to fix.
                raise ConfigError(f"SFTP {self.where}: permission denied listing folder {self.root} as user "
                                  f"{self.user!r}; ask the server's admin for read access, or check the URL's path") from None
            except UnicodeDecodeError as exc:
                # paramiko decodes every name as UTF-8, strictly: one file named by a Windows program in cp1252
                # (Lieferschein_M\xe4rz.pdf) fails the whole listing, with a message naming nothing.
                raise ConfigError(f"SFTP {self.where}: a file name in folder {self.root} is not UTF-8 (bytes "
                                  f"{exc.object[max(0, exc.start - 20):exc.end + 20]!r}), so the folder cannot be listed; "
                                  "rename that file (or move it out of the folder)") from None
        files, self.skipped = [], {}
        for entry in entries:
            name, mode = entry.filename, entry.st_mode or 0
            if not is_safe(name):  # only a broken or hostile server lists such a name
                skipped(self.skipped, self.log, f"SFTP {self.where} folder {self.root}", name, name_note(name))
            elif stat.S_ISREG(mode):
                files.append(RemoteFile(name, entry.st_size or 0, float(entry.st_mtime or 0)))
            elif stat.S_ISLNK(mode) and not self._to_folder(name):
                skipped(self.skipped, self.log, f"SFTP {self.where} folder {self.root}", name, link_note(name))
        return files

    def _to_folder(self, name: str) -> bool:
        """Whether a link in the listing points to a folder (no export, not worth a word)."""
        with self._call(f"stat {name}") as sftp:
            try:
                return stat.S_ISDIR(sftp.stat(self._path(name)).st_mode or 0)
            except OSError:  # a dangling link, or one to where this account may not look
                return False

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        with self._call(f"opening {name}") as sftp:
            try:
                handle = sftp.open(self._path(safe_name(name)), "rb")
                opened = handle.stat()
                size = opened.st_size or 0  # a file that grows meanwhile is caught by the caller's re-stat
                self._same(handle, opened, name)
            except FileNotFoundError:  # paramiko's error names no file
                raise FileNotFoundError(errno.ENOENT, f"SFTP {self.where}: {name} no longer exists", name) from None
            except PermissionError:
                raise Unreadable(f"SFTP {self.where}: permission denied reading {name} in folder {self.root} as user "
                                 f"{self.user!r}; ask the server's admin for read access to it") from None
            except OSError as exc:
                if not self._refused(exc):
                    raise
                # A Windows server answers so for a file its writer (the ERP) still has open.
                raise Unreadable(f"SFTP {self.where}: the server refused to open {name} in folder {self.root}: {exc} "
                                 "(a file its writer still has open, or no right to read it)") from None
        try:
            yield SftpReader(handle, self, name, size)  # type: ignore[misc]
        except BaseException:
            # Left mid-file (a stop, a file refused halfway): closing the handle would first wait for the
            # answers to the reads still in flight, up to a whole window on a slow link. Hang up instead.
            self._drop()
            raise
        try:
            handle.close()
        except NETWORK_ERRORS:
            pass

    def _same(self, handle: paramiko.SFTPFile, opened: paramiko.SFTPAttributes, name: str) -> None:
        """The server opens through a link: what is open must be the regular file the name is now, or an upload
        account could swap a listed file for a link to any file this account may read. SFTP has no inode
        number; a link's own entry differs in type, and another file in size or time. Owner and permission bits
        are not compared, nor an attribute either answer leaves out: a server whose FSTAT reply omits them (or
        the file type), or reports other bits, would have every poll refuse a normal file."""
        entry = self._client().lstat(self._path(name))
        pairs = [(getattr(entry, a, None), getattr(opened, a, None)) for a in ("st_size", "st_mtime")]
        same = (stat.S_ISREG(entry.st_mode or 0) and stat.S_IFMT(opened.st_mode or 0) in (0, stat.S_IFREG)
                and all(None in pair or pair[0] == pair[1] for pair in pairs))
        if not same:
            handle.close()
            raise Unreadable(f"SFTP {self.where}: {name} in folder {self.root} changed as it was opened, or was replaced by "
                             "a symbolic link (links are not followed)", lasting=False)  # the adapter: tried again

    def stat(self, name: str) -> RemoteFile | None:
        """The entry itself (a link's own size and mtime): a file swapped for a link reads as changed."""
        with self._call(f"stat {name}") as sftp:
            try:
                st = sftp.lstat(self._path(safe_name(name)))
            except FileNotFoundError:
                return None
        return RemoteFile(name, st.st_size or 0, float(st.st_mtime or 0))

    def move(self, name: str, folder: str) -> str:
        folder = safe_folder(folder)
        with self._call(f"moving {name}") as sftp, self._denied(f"moving {name} into {folder}"):
            current = self.root
            for part in folder.split("/"):
                current = posixpath.join(current, part)
                try:
                    sftp.stat(current)
                except FileNotFoundError:
                    sftp.mkdir(current)
            target = posixpath.join(current, safe_name(name))
            try:
                sftp.stat(target)
                stem, ext = posixpath.splitext(name)
                target = posixpath.join(current, f"{stem}.{time.strftime('%Y%m%dT%H%M%S')}{ext}")
            except FileNotFoundError:
                pass
            sftp.rename(self._path(name), target)
        return posixpath.relpath(target, self.root)

    def delete(self, name: str) -> None:
        with self._call(f"deleting {name}") as sftp, self._denied(f"deleting {name}"):
            try:
                sftp.remove(self._path(safe_name(name)))
            except FileNotFoundError:
                pass

    def check(self) -> list[str]:
        self._client()
        key = self._transport.get_remote_server_key() if self._transport else None
        return [f"connected to {self.where}, host key {fingerprint(key) if key else '?'}", f"folder {self.root}"]

    def close(self) -> None:
        self._drop()

