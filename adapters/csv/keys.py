"""The client's SSH key for SFTP: loaded from a file or from its text, with errors that say what to do."""

from __future__ import annotations

import io
from typing import Any

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from connector.errors import ConfigError

__all__ = ["private_key"]


def private_key(settings: Any, where: str) -> paramiko.PKey:
    """The client's key (``private_key_file`` or ``private_key``); a ``ConfigError`` that names the file and
    says what to do when it cannot be loaded."""
    s = settings
    passphrase = s.passphrase.get_secret_value().encode() if s.passphrase else None
    what = f"private_key_file {s.private_key_file}" if s.private_key_file else "private_key"
    try:
        if s.private_key_file:
            return paramiko.PKey.from_path(s.private_key_file, password=passphrase)
        return _from_text(_key_lines(s.private_key.get_secret_value()) + "\n", passphrase)
    except FileNotFoundError:
        raise ConfigError(f"SFTP {where}: {what} does not exist") from None
    except PermissionError:
        raise ConfigError(f"SFTP {where}: {what} is not readable by this user (check its owner and mode)") from None
    except (paramiko.SSHException, ValueError, TypeError, OSError, paramiko.pkey.UnknownKeyType) as exc:
        problem = _key_problem(_key_text(s), exc, passphrase is not None)
        raise ConfigError(f"SFTP {where}: cannot load the private key from {what}: {problem}") from None


def _from_text(text: str, passphrase: bytes | None) -> paramiko.PKey:
    """The key given as text, loaded in memory as ``PKey.from_path`` loads a file (OpenSSH format first, then
    PEM; the type from what loaded): written to a temporary file, the secret touched the disk, and with no
    writable temporary folder (a read-only root file system) it read as "does not exist"."""
    data = text.encode()
    try:
        loaded = serialization.load_ssh_private_key(data, password=passphrase)
    except ValueError:
        loaded = serialization.load_pem_private_key(data, password=passphrase)
    kinds = ((rsa.RSAPrivateKey, paramiko.RSAKey), (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
             (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey))
    kind = next((k for t, k in kinds if isinstance(loaded, t)), None)
    if kind is None:
        raise paramiko.pkey.UnknownKeyType(key_bytes=data, key_type=type(loaded))
    return kind.from_private_key(io.StringIO(text), password=passphrase)


def _key_lines(text: str) -> str:
    """The key text with its line breaks: given through the environment (Docker --env-file, systemd
    ``Environment=``) they often arrive as the two characters ``\\n``, which no key parser reads."""
    text = text.strip()
    return text.replace("\\n", "\n") if "\n" not in text and "\\n" in text else text


def _key_text(s: Any) -> str:
    """The key's first bytes, to tell a PuTTY key or a public key from a wrong passphrase."""
    if not s.private_key_file:
        return s.private_key.get_secret_value()[:200] if s.private_key else ""
    try:
        with open(s.private_key_file, "rb") as f:
            return f.read(200).decode("utf-8", "replace")
    except OSError:
        return ""


def _key_problem(text: str, exc: BaseException, passphrase: bool) -> str:
    """Why a key did not load, in words that say what to do (the library's own words mislead here: a
    wrong passphrase reads as "no BEGIN/END delimiters")."""
    if text.startswith("PuTTY-User-Key-File"):
        return "it is a PuTTY .ppk key; convert it with: puttygen KEY.ppk -O private-openssh -o KEY"
    if text.lstrip().startswith(("ssh-", "ecdsa-")):
        return "it is a public key; name the private key file instead"
    if isinstance(exc, paramiko.pkey.UnknownKeyType):
        return "its key type is not supported (DSA keys no longer are); use an ed25519, ECDSA or RSA key"
    if isinstance(exc, (TypeError, paramiko.PasswordRequiredException)):
        return "it is encrypted; set its passphrase (..._SFTP__PASSPHRASE)"
    if passphrase:
        return "wrong passphrase, or not a private key in OpenSSH or PEM format"
    return f"not a private key in OpenSSH or PEM format ({type(exc).__name__})"
