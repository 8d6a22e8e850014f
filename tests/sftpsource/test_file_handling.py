"""SFTP file handling against the loopback server: known_hosts as OpenSSH writes it, files that vanish,
moves the server refuses, and messages that say what to fix."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncssh
import pytest

from adapters.base import AdapterContext
from adapters.csv import CsvAdapter, CsvConfig
from connector.errors import ConfigError
from tests.conftest import SLUG, cli
from tests.sftpsource.server import SftpServer
from tests.sftpsource.test_sftp import HEADER, folder, sftp_config

CA_LINE = "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"


def _deny(monkeypatch: pytest.MonkeyPatch, *operations: str) -> None:
    """The server answers "Permission denied" to these SFTP operations (a read-only account)."""
    def deny(self: object, *args: object, **kwargs: object) -> None:
        raise asyncssh.SFTPPermissionDenied("Permission denied")

    for operation in operations:
        monkeypatch.setattr(asyncssh.SFTPServer, operation, deny)


def _adapter(server: SftpServer, tmp_path: Path, **config: object) -> CsvAdapter:
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    cfg = CsvConfig(url=f"sftp://{server.user}@127.0.0.1:{server.port}/exports", settle_seconds=0,
                    sftp={"password": server.password, "known_hosts": str(known)}, **config)
    return CsvAdapter("w", cfg, AdapterContext(source="w", log=logging.getLogger("sftp-files")))


# -- known_hosts ----------------------------------------------------------------------------------------

def test_known_hosts_with_a_cert_authority_line_still_verifies_the_host(server: SftpServer, sftp_root: Path,
                                                                         tmp_path: Path) -> None:
    (tmp_path / "known_hosts").write_text("# ours\n\n" + CA_LINE + server.known_hosts_line())
    (sftp_root / "exports" / "orders_1.csv").write_text("x\n")
    assert [f.name for f in folder(server, tmp_path).list()] == ["orders_1.csv"]


def test_a_revoked_host_key_is_refused_even_when_listed(server: SftpServer, tmp_path: Path) -> None:
    line = server.known_hosts_line()
    (tmp_path / "known_hosts").write_text(line + "@revoked\t" + line)
    with pytest.raises(ConfigError, match="@revoked") as info:
        folder(server, tmp_path).list()
    assert server.fingerprint in str(info.value)


@pytest.mark.parametrize("bad", ["@cert-authority-typo * ssh-ed25519 AAAA", "[127.0.0.1]:22 ssh-ed25519",
                                 "[127.0.0.1]:22 ssh-ed25519 !!!notbase64!!!"])
def test_a_malformed_known_hosts_line_names_file_and_line(server: SftpServer, tmp_path: Path, bad: str) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line() + bad + "\n")
    with pytest.raises(ConfigError, match=f"known_hosts file {known} line 2"):
        folder(server, tmp_path).list()


def test_a_known_hosts_key_of_a_type_this_client_cannot_use_is_skipped(server: SftpServer, tmp_path: Path) -> None:
    (tmp_path / "known_hosts").write_text("other.example sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t\n"
                                          + server.known_hosts_line())
    assert folder(server, tmp_path).list() == []


@pytest.mark.parametrize("server_first", [True, False])
def test_any_listed_key_of_a_host_is_accepted_as_by_openssh(server: SftpServer, tmp_path: Path, server_first: bool) -> None:
    # Two ed25519 keys for one host (a rotation, load-balanced nodes): paramiko keeps one per host and type,
    # so one order of the lines was refused as "host key CHANGED".
    line = server.known_hosts_line()
    host, kind = line.split()[:2]
    other = asyncssh.generate_private_key(kind).export_public_key("openssh").decode().split()[1]
    lines = [line.strip(), f"{host} {kind} {other}"]
    (tmp_path / "known_hosts").write_text("\n".join(lines if server_first else lines[::-1]) + "\n")
    assert folder(server, tmp_path).list() == []


def test_a_dsa_key_is_named_unsupported_not_a_bug(server: SftpServer, tmp_path: Path) -> None:
    dsa = tmp_path / "id_dsa"
    dsa.write_bytes(asyncssh.generate_private_key("ssh-dss").export_private_key("openssh"))
    with pytest.raises(ConfigError, match=f"{dsa}: its key type is not supported"):
        folder(server, tmp_path, password=None, private_key_file=str(dsa)).list()


# -- files that vanish; permissions -----------------------------------------------------------------

def test_a_file_that_vanishes_after_the_listing_is_skipped_by_name(server: SftpServer, sftp_root: Path, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    exports = sftp_root / "exports"
    for n in (1, 2):
        (exports / f"orders_{n}.csv").write_text(f"{HEADER}\n{n},10119,A,S,1,1\n")
    adapter = _adapter(server, tmp_path)
    listed = adapter.files.list

    def list_then_take_one() -> list:
        found = listed()
        (exports / "orders_1.csv").unlink()  # another consumer takes it right after the listing
        return found

    adapter.files.list = list_then_take_one  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="sftp-files"):
        pages = list(adapter.read("orders", None))
    assert [r.key for p in pages for r in p.records] == ["2"]
    assert "orders_1.csv vanished before it could be read" in caplog.text


def test_listing_a_folder_without_permission_is_a_config_error(server: SftpServer, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _deny(monkeypatch, "scandir")
    with pytest.raises(ConfigError, match=f"permission denied listing folder /exports as user '{server.user}'"):
        folder(server, tmp_path).list()


def test_a_refused_move_keeps_the_connection_and_names_what_was_refused(server: SftpServer, sftp_root: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    _deny(monkeypatch, "mkdir", "rename")
    for n in (1, 2, 3):
        (sftp_root / "exports" / f"orders_{n}.csv").write_text(f"{HEADER}\n{n},10119,A,S,1,1\n")
    adapter = _adapter(server, tmp_path, after_processing="archive")
    with caplog.at_level(logging.WARNING, logger="sftp-files"):
        assert len([r for p in adapter.read("orders", None) for r in p.records]) == 3
    assert server.connections == 1  # a refusal is the server's answer, not a network failure
    assert caplog.text.count(f"permission denied moving orders_1.csv into archive as user '{server.user}'") == 1


def test_a_failing_move_costs_no_download_per_poll(server: SftpServer, sftp_root: Path, tmp_path: Path, sandbox,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _deny(monkeypatch, "mkdir", "rename")
    exports = sftp_root / "exports"
    config, env = sftp_config(server, tmp_path, sandbox.url, after_processing="archive")
    for n in (1, 2):
        (exports / f"orders_{n}.csv").write_text(f"{HEADER}\n{n},10119,A,S,1,1\n")
    first = cli(config, "sync", env=env)
    assert first.returncode == 0, first.stderr
    assert set(sandbox.orders(SLUG)) == {"1", "2"} and "could not be moved" in first.stderr
    downloaded = server.bytes_read

    second = cli(config, "sync", env=env)
    assert second.returncode == 0, second.stderr
    assert server.bytes_read == downloaded and "could not be moved" not in second.stderr  # not even the cursor's file

    monkeypatch.undo()  # the admin grants the right: the next full sync moves both
    assert cli(config, "sync", "--full", env=env).returncode == 0
    assert sorted(p.name for p in (exports / "archive").iterdir()) == ["orders_1.csv", "orders_2.csv"]


# -- private keys ---------------------------------------------------------------------------------------

def test_private_key_problems_name_the_file_and_the_cause(server: SftpServer, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "id_ed25519"
    with pytest.raises(ConfigError, match=f"private_key_file {missing} does not exist"):
        folder(server, tmp_path, password=None, private_key_file=str(missing)).list()
    ppk = tmp_path / "key.ppk"
    ppk.write_text("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: x\n")
    with pytest.raises(ConfigError, match=f"{ppk}: it is a PuTTY .ppk key; convert it with: puttygen"):
        folder(server, tmp_path, password=None, private_key_file=str(ppk)).list()
    key = asyncssh.generate_private_key("ssh-ed25519")
    encrypted = tmp_path / "id_encrypted"
    encrypted.write_bytes(key.export_private_key("openssh", passphrase="pp-123"))
    with pytest.raises(ConfigError, match="it is encrypted; set its passphrase"):
        folder(server, tmp_path, password=None, private_key_file=str(encrypted)).list()
    with pytest.raises(ConfigError, match="wrong passphrase"):
        folder(server, tmp_path, password=None, private_key_file=str(encrypted), passphrase="nope").list()
    public = tmp_path / "id_ed25519.pub"
    public.write_bytes(key.export_public_key("openssh"))
    with pytest.raises(ConfigError, match="it is a public key"):
        folder(server, tmp_path, password=None, private_key_file=str(public)).list()
