"""Host-key verification for SFTP that cannot be skipped by accident.

The server's key must match a ``known_hosts`` entry or a pinned ``SHA256:`` fingerprint; an unknown or
changed key refuses the connection and the error shows the fingerprint to pin. The only way around it is
``insecure_skip_host_key_check = true``, which warns on every connect.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from pathlib import Path
from typing import Any

import paramiko

from connector.errors import ConfigError, RetryableError

__all__ = ["HostKeys", "NETWORK_ERRORS", "fingerprint", "pinned_fingerprint"]

NETWORK_ERRORS = (OSError, EOFError, paramiko.SSHException, socket.timeout)
# Host-key algorithms that prove each key type (as ``PKey.get_name()`` and known_hosts name them), in
# paramiko's order of preference. paramiko picks the first type the server also offers, so a pin of
# another type would fail on every connect unless the handshake is limited to the pinned type.
_HOST_KEY_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
}
_SHA256_BODY = re.compile(r"[A-Za-z0-9+/]{43}")  # a SHA-256 digest in unpadded base64


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's format: ``SHA256:`` + unpadded base64 of the SHA-256 of the key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def pinned_fingerprint(value: str) -> str:
    """A pin as ``fingerprint`` writes it. Without ``SHA256:`` or with base64 padding (as other tools copy
    it) it means the same key, so it is taken; anything else could never match and is refused up front."""
    text = value.strip()
    body = (text[7:] if text[:7].upper() == "SHA256:" else text).rstrip("=")
    if not _SHA256_BODY.fullmatch(body):
        raise ValueError(f"{value!r} is not a SHA256 host key fingerprint: use the \"SHA256:...\" value that "
                         "ssh-keygen -lf prints (MD5 fingerprints, hex with colons, are not accepted)")
    return "SHA256:" + body


class HostKeys:
    """Opens SSH transports to one server and verifies its host key; remembers a pin's key type."""

    def __init__(self, host: str, port: int, where: str, settings: Any, log: Any) -> None:
        self.host, self.port, self.where, self.settings, self.log = host, port, where, settings, log
        self._pinned_type: str | None = None  # key type of the pinned fingerprint, once a connect found it

    def transport(self) -> paramiko.Transport:
        """A connected transport whose host key has been verified (not yet authenticated)."""
        return self._verified_transport()

    def _handshake(self, key_types: tuple[str, ...] | None = None) -> paramiko.Transport:
        """An SSH transport, its host key not yet checked; ``key_types`` limits the host-key algorithms.

        With ``key_types``, ``paramiko.IncompatiblePeer`` (the server has no key of those types) is left to
        the caller, which may ask for other types.
        """
        s = self.settings
        try:
            sock = socket.create_connection((self.host, self.port), timeout=s.timeout_seconds)
        except NETWORK_ERRORS as exc:
            raise RetryableError(f"SFTP {self.where}: cannot connect: {exc}") from None
        transport = paramiko.Transport(sock)
        try:
            if key_types:
                transport.get_security_options().key_types = key_types
            transport.start_client(timeout=s.timeout_seconds)
        except NETWORK_ERRORS as exc:
            transport.close()
            if key_types and isinstance(exc, paramiko.IncompatiblePeer):
                raise
            raise RetryableError(f"SFTP {self.where}: cannot connect: {exc}") from None
        return transport

    def _verified_transport(self) -> paramiko.Transport:
        s = self.settings
        if s.insecure_skip_host_key_check:
            transport = self._handshake()
            seen = fingerprint(transport.get_remote_server_key())
            self.log.warning("SFTP %s: host key NOT verified (insecure_skip_host_key_check); it is %s", self.where, seen)
            return transport
        if s.host_key_fingerprint:
            return self._pinned(s.host_key_fingerprint.strip())
        return self._known_host()

    def _pinned(self, pin: str) -> paramiko.Transport:
        """A transport whose host key has the pinned fingerprint.

        A fingerprint does not tell its key type, so until one connect has found it, each type is asked
        for in turn (a server without that type ends the handshake at once); after that, only that type.
        """
        first = self._pinned_type
        order = [first, *(t for t in _HOST_KEY_ALGORITHMS if t != first)] if first else [None, *_HOST_KEY_ALGORITHMS]
        seen: dict[str, str] = {}
        for key_type in order:
            if key_type in seen:
                continue  # already shown by paramiko's own choice
            try:
                transport = self._handshake(_HOST_KEY_ALGORITHMS[key_type] if key_type else None)
            except paramiko.IncompatiblePeer:
                continue
            key = transport.get_remote_server_key()
            if fingerprint(key) == pin:
                self._pinned_type = key.get_name() if key.get_name() in _HOST_KEY_ALGORITHMS else None
                return transport
            transport.close()
            seen[key.get_name()] = fingerprint(key)
        offered = ", ".join(f"{f} ({t})" for t, f in seen.items()) or "(none of a type this client reads)"
        raise ConfigError(f"SFTP {self.where}: host key {offered} does not match the pinned {pin}; refusing to connect")

    def _known_host(self) -> paramiko.Transport:
        """A transport whose host key is in known_hosts, asked for in the types known_hosts has for it."""
        entry = self._known_hosts().lookup(self.host if self.port == 22 else f"[{self.host}]:{self.port}") or {}
        known_types = tuple(a for t, algorithms in _HOST_KEY_ALGORITHMS.items() if t in entry for a in algorithms)
        try:
            transport = self._handshake(known_types or None)
        except paramiko.IncompatiblePeer:  # the server offers none of them: show what it does offer
            transport = self._handshake()
        try:
            self._check_known(transport.get_remote_server_key(), entry)
        except BaseException:
            transport.close()
            raise
        return transport

    def _check_known(self, key: paramiko.PKey, entry: Any) -> None:
        seen = fingerprint(key)
        pin = f"pin it with host_key_fingerprint = \"{seen}\" after checking it with the server's admin"
        expected = entry.get(key.get_name())
        if expected is None:
            raise ConfigError(f"SFTP {self.where}: unknown host key {seen} ({key.get_name()}); add it to known_hosts or {pin}")
        if expected.asbytes() != key.asbytes():
            raise ConfigError(f"SFTP {self.where}: host key CHANGED to {seen} (known_hosts has {fingerprint(expected)}); refusing to connect")

    def _known_hosts(self) -> paramiko.HostKeys:
        path = Path(self.settings.known_hosts or "~/.ssh/known_hosts").expanduser()
        keys = paramiko.HostKeys()
        if path.is_file():
            keys.load(str(path))
        elif self.settings.known_hosts:
            raise ConfigError(f"known_hosts file {path} does not exist")
        return keys
