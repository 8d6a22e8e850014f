"""No writable temporary folder (a read-only root file system, a full /tmp): an SFTP file cannot be spooled.

That is the run's failure naming TMPDIR (exit 3, the file read once there is one), never "vanished" with
exit 0; and a key given as text loads in memory, without a temporary file."""

from __future__ import annotations

import tempfile
from pathlib import Path

import asyncssh
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from adapters.csv.keys import private_key
from adapters.csv.sftp import SftpSettings
from tests.conftest import SLUG, cli
from tests.sftpsource.server import SftpServer
from tests.sftpsource.test_sftp import HEADER, sftp_config


def no_temp_folder(tmp_path: Path) -> dict[str, str]:
    """The env for a CLI run whose Python finds no usable temporary folder, as on a read-only root."""
    site = tmp_path / "site"
    site.mkdir()
    # tempfile's candidates (TMPDIR, /tmp, /var/tmp, the working folder) replaced by one that does not exist
    (site / "sitecustomize.py").write_text(
        f"import tempfile\ntempfile._candidate_tempdir_list = lambda: [{str(tmp_path / 'read-only-root')!r}]\n")
    return {"PYTHONPATH": f"{site}:{Path.cwd()}"}


@pytest.mark.parametrize("auth", ["password", "private_key"])
def test_no_temp_folder_fails_the_run_naming_tmpdir(sftp_root: Path, tmp_path: Path, sandbox, auth: str) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = SftpServer(sftp_root, client_keys=[key.export_public_key("openssh").decode()]).start()
    try:
        (sftp_root / "exports" / "orders_1.csv").write_text(f"{HEADER}\n1,10119,A,S,1,1\n")
        config, env = sftp_config(server, tmp_path, sandbox.url)
        if auth == "private_key":
            env = {"KARLA_CONNECTOR_SOURCES__WAREHOUSE__SFTP__PRIVATE_KEY": key.export_private_key("openssh").decode()}
        stuck = cli(config, "sync", env={**env, **no_temp_folder(tmp_path)})
        assert stuck.returncode == 3, stuck.stderr  # not finished: a cron job or unit sees it
        assert "TMPDIR" in stuck.stderr and "orders_1.csv" in stuck.stderr and "vanished" not in stuck.stderr
        assert sandbox.orders(SLUG) == {}
        fixed = cli(config, "sync", env=env)  # nothing of it was marked read: it is read once there is a folder
        assert fixed.returncode == 0, fixed.stderr
        assert set(sandbox.orders(SLUG)) == {"1"}
    finally:
        server.stop()


def _texts() -> list[tuple[str, bytes | None]]:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    ecdsa = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.BestAvailableEncryption(b"pp-1"))
    ed25519 = asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh")
    return [(rsa_pem.decode(), None), (ecdsa.decode(), b"pp-1"), (ed25519.decode(), None)]


@pytest.mark.parametrize(("text", "passphrase"), _texts(), ids=["rsa-pem", "ecdsa-openssh-encrypted", "ed25519-openssh"])
def test_a_key_given_as_text_loads_without_a_temporary_file(monkeypatch: pytest.MonkeyPatch, text: str,
                                                            passphrase: bytes | None) -> None:
    def no_temporary_file(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the private key was written to a temporary file")

    for name in ("TemporaryDirectory", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, no_temporary_file)
    flat = text.strip().replace("\n", "\\n")  # as it arrives through an env file: still read
    settings = SftpSettings(private_key=SecretStr(flat), passphrase=SecretStr(passphrase.decode()) if passphrase else None)
    key = private_key(settings, "sftp.example.com:22")
    assert key.get_bits() > 0 and key.can_sign()
