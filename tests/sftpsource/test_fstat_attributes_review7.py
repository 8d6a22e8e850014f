"""An SFTP server's FSTAT reply that leaves out the owner or the file type, or reports other permission bits,
than its LSTAT reply (review chg7b): the check that the file opened is the file listed compared owner, group and
mode too, so every poll refused a normal file on such a server as "changed as it was opened", for ever.
A real asyncssh server on loopback, its FSTAT answer cut down; a link swapped in is still refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh
import pytest

from adapters.csv.files import Unreadable
from tests.sftpsource.server import SftpServer
from tests.sftpsource.test_sftp import folder


def _bare_fstat(self: asyncssh.SFTPServer, file_obj: object) -> asyncssh.SFTPAttrs:
    """Size and time only, the permission bits without the file type; no owner or group."""
    st = os.fstat(file_obj.fileno())  # type: ignore[attr-defined]
    return asyncssh.SFTPAttrs(size=st.st_size, mtime=int(st.st_mtime), permissions=0o600)


@pytest.fixture()
def bare(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncssh.SFTPServer, "fstat", _bare_fstat)


def test_a_file_whose_fstat_omits_owner_and_type_is_read(bare: None, server: SftpServer, sftp_root: Path, tmp_path: Path) -> None:
    path = sftp_root / "exports" / "orders_1.csv"
    path.write_bytes(b"order_number\n1\n")
    os.chmod(path, 0o644)
    files = folder(server, tmp_path)
    [listed] = files.list()
    with files.open(listed.name) as f:  # before: Unreadable "changed as it was opened"
        assert f.read() == b"order_number\n1\n"


def test_a_link_swapped_in_is_still_refused_on_such_a_server(bare: None, server: SftpServer, sftp_root: Path,
                                                            tmp_path: Path) -> None:
    exports = sftp_root / "exports"
    (exports / "orders_1.csv").write_bytes(b"order_number\n1\n")
    (sftp_root / "secret.csv").write_bytes(b"order_number\n1\n")  # the same size: only the entry's type tells
    files = folder(server, tmp_path)
    [listed] = files.list()
    (exports / "orders_1.csv").unlink()
    (exports / "orders_1.csv").symlink_to(sftp_root / "secret.csv")
    with pytest.raises(Unreadable, match="replaced by a symbolic link"), files.open(listed.name) as f:
        f.read()


def test_another_file_of_another_size_under_the_name_is_refused(bare: None, server: SftpServer, sftp_root: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Size and time are still compared: an FSTAT answer of another size is not the entry listed."""
    (sftp_root / "exports" / "orders_1.csv").write_bytes(b"order_number\n1\n")
    monkeypatch.setattr(asyncssh.SFTPServer, "fstat",
                        lambda self, f: asyncssh.SFTPAttrs(size=os.fstat(f.fileno()).st_size + 1, permissions=0o100600))
    files = folder(server, tmp_path)
    [listed] = files.list()
    with pytest.raises(Unreadable, match="changed as it was opened") as refused, files.open(listed.name) as f:
        f.read()
    assert "tried again" not in str(refused.value)  # the adapter says so once, after it (a soak saw it twice)
