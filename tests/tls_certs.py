"""Throw-away TLS for tests: a private CA, server certificates it signs, and a loopback HTTP server behind TLS.

Nothing here trusts anything beyond the test: each CA is generated per test and written to its tmp_path."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from socketserver import BaseServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Handshakes", "Pki", "serve_tls"]


@dataclass
class Pki:
    """A CA (``ca_file``, PEM) in ``folder`` and the server certificates it issued."""

    folder: Path

    def __post_init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "karla-connector test CA")])
        self.ca_cert = (
            _builder(name, name, self.ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file = self.folder / "ca.pem"
        self.ca_file.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))

    def server_context(self, *names: str) -> ssl.SSLContext:
        """A server-side context presenting a certificate for ``names`` (IP addresses or DNS names)."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names]
        cert = (
            _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]), self.ca_cert.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        stem = self.folder / f"server-{'-'.join(names)}"
        cert_file, key_file = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + self.ca_cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        return context


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
    )


class Handshakes:
    """The TLS handshakes a server saw, in order: "ok", or "refused: <reason>" (the client refused the certificate)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address, self.changed = address, threading.Condition()
        self.seen: list[tuple[str, object]] = []  # (outcome, the client's address)

    def add(self, outcome: str, client: object = None) -> None:
        with self.changed:
            self.seen.append((outcome, client))
            self.changed.notify_all()

    def settled(self) -> list[str]:
        """Every handshake so far, once the server has finished them: the client may give up on a certificate
        before the server thread records its side. One last plain connection is queued behind them (the
        server accepts in order) and waited for by its own address, so no sleep and no race."""
        probe = socket.create_connection(self.address, timeout=5)
        mine = probe.getsockname()
        probe.close()
        with self.changed:
            assert self.changed.wait_for(lambda: any(c == mine for _, c in self.seen), timeout=10), "the TLS server stopped"
            self.seen = [(o, c) for o, c in self.seen if c != mine]  # the plain connection's
            return [o for o, _ in self.seen]


def serve_tls(server: BaseServer, context: ssl.SSLContext) -> Handshakes:
    """Put ``server`` (a started or unstarted loopback ``socketserver``) behind TLS; the same listening socket
    (file descriptor) is kept, so a running ``serve_forever`` carries on with it."""
    handshakes = Handshakes(server.server_address[:2])  # type: ignore[attr-defined]
    listening = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)  # type: ignore[attr-defined]

    def get_request() -> tuple[ssl.SSLSocket, object]:
        conn, address = listening.accept()
        try:
            conn.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            handshakes.add(f"refused: {exc}", address)
            conn.close()
            raise
        handshakes.add("ok", address)
        return conn, address

    server.socket = listening  # type: ignore[attr-defined]
    server.get_request = get_request  # type: ignore[method-assign]
    return handshakes
