"""SSH host keys for SFTP: verification that cannot be skipped by accident (the client's key: ``keys``).

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
from typing import Any, NamedTuple

import paramiko

from connector.errors import ConfigError, RetryableError

__all__ = ["HostKeys", "KnownHosts", "NETWORK_ERRORS", "fingerprint", "load_known_hosts", "pinned_fingerprint"]

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
# (host, port, pin) -> the pinned key's type, for the whole process: each poll makes a new ``HostKeys``, and
# trying every type again would cost up to five connections per poll (which fail2ban may punish).
_PINNED_TYPES: dict[tuple[str, int, str], str] = {}
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
        # paramiko's own waits (15-30 s) would ignore the configured timeout
        transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = s.timeout_seconds
        try:
            if key_types:
                transport.get_security_options().key_types = key_types
            transport.start_client(timeout=s.timeout_seconds)
        except NETWORK_ERRORS as exc:
            transport.close()
            if key_types and isinstance(exc, paramiko.IncompatiblePeer):
                raise
            if isinstance(exc.__context__, TimeoutError):  # paramiko's banner wait: "Error reading SSH protocol banner"
                raise self._silent() from None
            raise RetryableError(f"SFTP {self.where}: cannot connect: {exc or type(exc).__name__}") from None
        if not transport.is_active() or not transport.initial_kex_done:
            # start_client returns silently when its timeout passes: a server (or a firewall in between) that
            # accepts the connection but never answers would otherwise fail later as "No existing session".
            transport.close()
            raise self._silent()
        return transport

    def _silent(self) -> RetryableError:
        return RetryableError(f"SFTP {self.where}: no SSH handshake within {self.settings.timeout_seconds:g}s "
                              "(timeout_seconds): the port accepts connections but no SSH server answers on it")

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
        first = _PINNED_TYPES.get((self.host, self.port, pin))
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
                if key.get_name() in _HOST_KEY_ALGORITHMS:
                    _PINNED_TYPES[(self.host, self.port, pin)] = key.get_name()
                return transport
            transport.close()
            seen[key.get_name()] = fingerprint(key)
        offered = ", ".join(f"{f} ({t})" for t, f in seen.items()) or "(none of a type this client reads)"
        raise ConfigError(f"SFTP {self.where}: host key {offered} does not match the pinned {pin}; refusing to connect. "
                          "If the server's admin confirms the key was replaced, set host_key_fingerprint to the new value; "
                          "otherwise something may be intercepting the connection")

    def _known_host(self) -> paramiko.Transport:
        """A transport whose host key is in known_hosts, asked for in the types known_hosts has for it."""
        known = self._known_hosts()
        entry = known.lookup(self.host if self.port == 22 else f"[{self.host}]:{self.port}")
        known_types = tuple(a for t, algorithms in _HOST_KEY_ALGORITHMS.items() if t in entry for a in algorithms)
        try:
            transport = self._handshake(known_types or None)
        except paramiko.IncompatiblePeer:  # the server offers none of them: show what it does offer
            transport = self._handshake()
        try:
            self._check_known(transport.get_remote_server_key(), entry, known)
        except BaseException:
            transport.close()
            raise
        return transport

    def _check_known(self, key: paramiko.PKey, entry: Any, known: KnownHosts) -> None:
        seen = fingerprint(key)
        if key.asbytes() in known.revoked:
            raise ConfigError(f"SFTP {self.where}: host key {seen} is marked @revoked in {known.path}; refusing to connect")
        pin = f"pin it with host_key_fingerprint = \"{seen}\" after checking it with the server's admin"
        expected = entry.get(key.get_name(), [])
        if not expected:
            raise ConfigError(f"SFTP {self.where}: unknown host key {seen} ({key.get_name()}); add it to known_hosts or {pin}")
        if key.asbytes() not in {k.asbytes() for k in expected}:  # any listed key will do, as for OpenSSH
            listed = ", ".join(fingerprint(k) for k in expected)
            raise ConfigError(f"SFTP {self.where}: host key CHANGED to {seen} (known_hosts {known.path} has {listed}{known.lines_of(expected)}); "
                              "refusing to connect. Ask the server's admin whether the key was replaced; if so, remove that "
                              f"line from {known.path} and add the new one (ssh-keyscan), or {pin}")

    def _known_hosts(self) -> KnownHosts:
        path = Path(self.settings.known_hosts or "~/.ssh/known_hosts").expanduser()
        if path.is_file():
            return load_known_hosts(path, self.log)
        if self.settings.known_hosts:
            raise ConfigError(f"known_hosts file {path} does not exist")
        return KnownHosts(path, [], frozenset())


class KnownHosts(NamedTuple):
    """A known_hosts file: the keys it accepts per host, and the key blobs it marks ``@revoked``.

    ``layers``: paramiko's ``HostKeys`` holds one key per host and type (a second line replaces the first),
    while OpenSSH accepts any listed key (a rotation, load-balanced servers with keys of their own): a
    second key of a host and type goes into the next layer."""

    path: Path
    layers: list[paramiko.HostKeys]
    revoked: frozenset[bytes]
    lines: dict[bytes, list[int]] | None = None  # key blob -> its line numbers, to say which line to replace

    def lines_of(self, keys: list[paramiko.PKey]) -> str:
        found = sorted({n for k in keys for n in (self.lines or {}).get(k.asbytes(), [])})
        return f" on line {', '.join(map(str, found))}" if found else ""

    def lookup(self, host: str) -> dict[str, list[paramiko.PKey]]:
        found: dict[str, list[paramiko.PKey]] = {}
        for layer in self.layers:
            for kind, key in (layer.lookup(host) or {}).items():
                found.setdefault(kind, []).append(key)
        return found

    def add(self, name: str, key: paramiko.PKey) -> None:
        for layer in self.layers:
            if key.get_name() not in (layer.lookup(name) or {}):
                layer.add(name, key.get_name(), key)
                return
        self.layers.append(paramiko.HostKeys())
        self.layers[-1].add(name, key.get_name(), key)


def load_known_hosts(path: Path, log: Any) -> KnownHosts:
    """known_hosts as OpenSSH writes it, read line by line.

    paramiko's own loader fails on the first marker line (paramiko issue #771), so a file that also holds
    an ``@cert-authority`` line broke every connect. Certificates are not checked here: such lines are
    skipped (a host that shows only a certificate stays unknown and is refused). A key under ``@revoked``
    is refused for every host. A line that cannot be read is a ``ConfigError`` naming it: skipping it
    could skip the very key that matters, or a revocation.
    """
    known, revoked, lines = KnownHosts(path, [], frozenset()), set(), {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"known_hosts file {path} cannot be read: {exc.strerror or exc}") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker, rest = (line.split(None, 1) + [""])[:2] if line.startswith("@") else ("", line)
        if marker == "@cert-authority":
            log.debug("known_hosts %s line %d: @cert-authority skipped (host certificates are not checked)", path, number)
            continue
        if marker not in ("", "@revoked"):
            raise ConfigError(f"known_hosts file {path} line {number}: unknown marker {marker!r} "
                              "(OpenSSH knows @cert-authority and @revoked)")
        entry = _entry(rest.strip(), path, number, log)
        if entry is None:
            continue
        if marker == "@revoked":
            revoked.add(entry.key.asbytes())
        else:
            lines.setdefault(entry.key.asbytes(), []).append(number)
            for name in entry.hostnames:
                known.add(name, entry.key)
    return known._replace(revoked=frozenset(revoked), lines=lines)


def _entry(line: str, path: Path, number: int, log: Any) -> paramiko.hostkeys.HostKeyEntry | None:
    """One ``hosts keytype base64 [comment]`` line; None for a key type this client cannot use."""
    fields = line.split()
    if len(fields) < 3:
        raise ConfigError(f"known_hosts file {path} line {number}: expected \"HOSTS KEYTYPE KEY\", found {len(fields)} field(s)")
    try:
        entry = paramiko.hostkeys.HostKeyEntry.from_line(" ".join(fields[:3]), number)
    except (paramiko.hostkeys.InvalidHostKey, paramiko.SSHException, ValueError, TypeError, IndexError) as exc:
        raise ConfigError(f"known_hosts file {path} line {number}: the {fields[1]} key cannot be read "
                          f"({type(exc).__name__}); copy the line again from ssh-keyscan") from None
    if entry is None:
        log.debug("known_hosts %s line %d: key type %s is not used by this client, skipped", path, number, fields[1])
    return entry
