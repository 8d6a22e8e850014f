"""CSV over SFTP against a real SSH server on loopback: host keys, auth, streaming, drops, moves."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest
from pydantic import SecretStr

from adapters.base import AdapterContext
from adapters.csv import CsvAdapter, CsvConfig
from adapters.csv.sftp import SftpFolder, SftpSettings
from connector.errors import ConfigError, RetryableError
from tests.conftest import SLUG, cli, write_config
from tests.sftpsource.server import SftpServer

HEADER = "order_number,shipping_zip_code,shipping_name,sku,quantity,price"


def folder(server: SftpServer, tmp_path: Path, **settings: object) -> SftpFolder:
    known = tmp_path / "known_hosts"
    if not known.exists():
        known.write_text(server.known_hosts_line())
    options = {"password": server.password, "known_hosts": str(known), **settings}
    return SftpFolder.from_url(f"sftp://{server.user}@127.0.0.1:{server.port}/exports", SftpSettings.model_validate(options))


def test_password_auth_lists_only_safe_regular_files(server: SftpServer, sftp_root: Path, tmp_path: Path) -> None:
    (sftp_root / "exports" / "orders_1.csv").write_text("a\n")
    (sftp_root / "exports" / "sub").mkdir()
    files = folder(server, tmp_path).list()
    assert [(f.name, f.size) for f in files] == [("orders_1.csv", 2)] and files[0].mtime > 0


def test_key_auth_with_passphrase(sftp_root: Path, tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    srv = SftpServer(sftp_root, client_keys=[key.export_public_key("openssh").decode()]).start()
    try:
        private = key.export_private_key("openssh", passphrase="pp-123").decode()
        sftp = folder(srv, tmp_path, password=None, private_key=private, passphrase="pp-123")
        assert sftp.list() == []
        with pytest.raises(ConfigError, match="private key"):
            folder(srv, tmp_path, password=None, private_key=private, passphrase="wrong").list()
    finally:
        srv.stop()


def test_unknown_host_key_is_refused_with_its_fingerprint(server: SftpServer, tmp_path: Path) -> None:
    (tmp_path / "known_hosts").write_text("")
    with pytest.raises(ConfigError, match="unknown host key") as info:
        folder(server, tmp_path).list()
    assert server.fingerprint in str(info.value) and "host_key_fingerprint" in str(info.value)


def test_changed_host_key_is_refused(server: SftpServer, tmp_path: Path) -> None:
    folder(server, tmp_path).list()  # known_hosts written with the current key
    server.restart_with_new_host_key()
    with pytest.raises(ConfigError, match="CHANGED"):
        folder(server, tmp_path).list()


def test_pinned_fingerprint_and_insecure_opt_out(server: SftpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "known_hosts").write_text("")
    assert folder(server, tmp_path, host_key_fingerprint=server.fingerprint).list() == []
    with pytest.raises(ConfigError, match="does not match the pinned"):
        folder(server, tmp_path, host_key_fingerprint="SHA256:" + "A" * 43).list()
    insecure = folder(server, tmp_path, insecure_skip_host_key_check=True)
    with caplog.at_level(logging.WARNING):
        insecure.list()
        insecure.close()
        insecure.list()
    assert sum("NOT verified" in r.getMessage() for r in caplog.records) == 2  # on every connect


def test_a_pin_without_its_prefix_or_with_padding_means_the_same_key(server: SftpServer, tmp_path: Path) -> None:
    (tmp_path / "known_hosts").write_text("")
    body = server.fingerprint.removeprefix("SHA256:")
    for pin in (body, f"  {body}=  ", f"sha256:{body}"):
        assert folder(server, tmp_path, host_key_fingerprint=pin).list() == []
    with pytest.raises(ValueError, match="not a SHA256 host key fingerprint"):  # could never match: refused at start-up
        SftpSettings(host_key_fingerprint="MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48")


def test_a_refused_host_key_is_one_message_not_paramikos_tracebacks(server: SftpServer, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "known_hosts").write_text("")
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError, match="does not match the pinned"):
        folder(server, tmp_path, host_key_fingerprint="SHA256:" + "A" * 43).list()  # asks for each key type: refused
    assert [r.getMessage() for r in caplog.records if r.name.startswith("paramiko") and r.levelno >= logging.ERROR] == []
    assert any(r.name.startswith("paramiko") for r in caplog.records)  # paramiko's debug log is still there


def test_a_pinned_key_of_the_type_the_client_would_not_pick_first(sftp_root: Path, tmp_path: Path) -> None:
    """The server offers ed25519 (paramiko's first choice) and ECDSA; the ECDSA key is the one pinned."""
    srv = SftpServer(sftp_root, extra_host_keys=("ecdsa-sha2-nistp256",)).start()
    opened: list[SftpFolder] = []

    def connect(**settings: object) -> list:
        opened.append(folder(srv, tmp_path, **settings))
        return opened[-1].list()

    try:
        ecdsa = srv.extra_host_keys[0]
        (tmp_path / "known_hosts").write_text("")
        before = srv.connections
        assert connect(host_key_fingerprint=srv.fingerprint_of(ecdsa)) == [] and srv.connections - before == 2  # ed25519, then ECDSA
        opened[-1].close()
        before = srv.connections
        assert opened[-1].list() == [] and srv.connections - before == 1  # the type is known now: asked for at once
        (tmp_path / "known_hosts").write_text(srv.known_hosts_line(ecdsa))  # only the ECDSA key is known
        assert connect() == []
        (tmp_path / "known_hosts").write_text(srv.known_hosts_line())  # only the ed25519 key is known
        assert connect() == []
        with pytest.raises(ConfigError, match="does not match the pinned") as info:
            connect(host_key_fingerprint="SHA256:" + "A" * 43)
        assert srv.fingerprint in str(info.value) and srv.fingerprint_of(ecdsa) in str(info.value)  # every key offered
    finally:
        for sftp in opened:
            sftp.close()
        srv.stop()


def test_wrong_password_is_a_config_error_without_the_password(server: SftpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError, match="authentication failed for user 'merchant'") as info:
        folder(server, tmp_path, password="wrong-pw-77").list()
    assert "wrong-pw-77" not in str(info.value) + caplog.text
    settings = SftpSettings(password=SecretStr("wrong-pw-77"))
    assert "wrong-pw-77" not in repr(settings) + str(settings)
    with pytest.raises(ConfigError, match="must not contain a password"):
        SftpFolder.from_url("sftp://u:pw@host/x", settings)


# Memory is measured in a child process: the SFTP server runs in this one, and its send buffers (which
# grow when the client is slowed down by a busy machine) must not count against the client.
_CHILD = """
import json, sys, tracemalloc
from adapters.base import AdapterContext
from adapters.csv import CsvAdapter, CsvConfig
from adapters.csv.sftp import SftpFolder, SftpSettings
url, password, known, what = sys.argv[1:5]
settings = {"password": password, "known_hosts": known}
if what == "raw":
    tracemalloc.start()
    total = 0
    with SftpFolder.from_url(url, SftpSettings.model_validate(settings)).open("big.bin") as reader:
        for chunk in iter(lambda: reader.read(1 << 16), b""):
            total += len(chunk)
else:
    adapter = CsvAdapter("w", CsvConfig(url=url, sftp=settings, settle_seconds=0, bucket_bytes=150_000, page_size=500, orders_glob=what),
                         AdapterContext(source="w"))
    tracemalloc.start()
    sum(len(page.records) for page in adapter.read("orders", None))  # warm-up: imports, connection
    adapter.config = adapter.config.model_copy(update={"orders_glob": "orders_*.csv"})
    tracemalloc.reset_peak()
    total = sum(len(page.records) for page in adapter.read("orders", None))
print(json.dumps({"total": total, "peak": tracemalloc.get_traced_memory()[1]}))
"""


def _child_peak(server: SftpServer, tmp_path: Path, what: str) -> tuple[int, int]:
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    url = f"sftp://{server.user}@127.0.0.1:{server.port}/exports"
    done = subprocess.run([sys.executable, "-c", _CHILD, url, server.password, str(known), what],
                          capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["total"], result["peak"]


def test_large_file_streams_with_bounded_memory(server: SftpServer, sftp_root: Path, tmp_path: Path) -> None:
    (sftp_root / "exports" / "big.bin").write_bytes(os.urandom(20_000_000))
    total, peak = _child_peak(server, tmp_path, "raw")
    assert total == 20_000_000 and peak < 8_000_000, peak


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # paramiko's read-ahead thread sees the drop too
def test_dropped_connection_mid_download_is_retryable_then_reconnects(server: SftpServer, sftp_root: Path, tmp_path: Path) -> None:
    (sftp_root / "exports" / "orders_1.csv").write_bytes(b"x" * 3_000_000)
    sftp = folder(server, tmp_path)
    server.drop_after_bytes = 500_000
    with pytest.raises(RetryableError, match="connection lost while reading orders_1.csv"):
        with sftp.open("orders_1.csv") as reader:
            while reader.read(1 << 16):
                pass
    server.drop_after_bytes = None
    with sftp.open("orders_1.csv") as reader:
        assert len(b"".join(iter(lambda: reader.read(1 << 16), b""))) == 3_000_000
    assert server.connections == 2


def test_move_delete_and_path_safety(server: SftpServer, sftp_root: Path, tmp_path: Path) -> None:
    exports = sftp_root / "exports"
    for name in ("a.csv", "b.csv"):
        (exports / name).write_text(name)
    sftp = folder(server, tmp_path)
    assert sftp.move("a.csv", "archive") == "archive/a.csv"
    (exports / "a.csv").write_text("again")
    assert sftp.move("a.csv", "archive").startswith("archive/a.") and (exports / "archive" / "a.csv").read_text() == "a.csv"
    with pytest.raises(ConfigError, match="inside the source folder"):
        sftp.move("b.csv", "../outside")
    with pytest.raises(ValueError):
        sftp.delete("../b.csv")
    sftp.delete("b.csv")
    assert not (exports / "b.csv").exists()


def _csv_adapter(server: SftpServer, tmp_path: Path, **config: object) -> CsvAdapter:
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    cfg = CsvConfig(url=f"sftp://{server.user}@127.0.0.1:{server.port}/exports",
                    sftp={"password": server.password, "known_hosts": str(known)}, **{"settle_seconds": 0, **config})
    return CsvAdapter("w", cfg, AdapterContext(source="w"))


def test_csv_adapter_reads_cp1252_over_sftp_and_archives(server: SftpServer, sftp_root: Path, tmp_path: Path) -> None:
    (sftp_root / "exports" / "orders_1.csv").write_bytes(f"{HEADER}\n1,10119,Jürgen Weiß,S,1,1\n".encode("cp1252"))
    adapter = _csv_adapter(server, tmp_path, encoding="cp1252", after_processing="archive")
    assert any("1 file(s) match 'orders*.csv'" in fact for fact in adapter.check())
    (page,) = list(adapter.read("orders", None))
    assert page.records[0].order.address.name == "Jürgen Weiß"  # type: ignore[union-attr]
    assert (sftp_root / "exports" / "archive" / "orders_1.csv").exists()


def test_growing_file_waits_to_settle_and_done_marker_mode(server: SftpServer, sftp_root: Path, tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    path = sftp_root / "exports" / "orders_1.csv"
    path.write_text(f"{HEADER}\n1,10119,A,S,1,1\n")
    modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())

    def adapter(now: datetime, **extra: object) -> CsvAdapter:
        cfg = CsvConfig(url=f"sftp://{server.user}@127.0.0.1:{server.port}/exports",
                        sftp={"password": server.password, "known_hosts": str(known)}, **extra)
        return CsvAdapter("w", cfg, AdapterContext(source="w", clock=lambda: now))

    assert list(adapter(modified + timedelta(seconds=5), settle_seconds=60).read("orders", None)) == []
    assert len(list(adapter(modified + timedelta(seconds=61), settle_seconds=60).read("orders", None))) == 1
    assert list(adapter(modified, done_suffix=".done").read("orders", None)) == []
    (sftp_root / "exports" / "orders_1.csv.done").write_text("")
    assert len(list(adapter(modified, done_suffix=".done").read("orders", None))) == 1


def sftp_config(server: SftpServer, tmp_path: Path, url: str, **source: object) -> tuple[Path, dict[str, str]]:
    """A CLI config whose CSV source reads ``/exports`` over SFTP (host key in known_hosts), and the env
    with its password."""
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    config = write_config(tmp_path, url, source=source, extra=f'[sources.warehouse.sftp]\nknown_hosts = "{known}"\n')
    config.write_text(config.read_text().replace(f'url = "file://{tmp_path / "files"}"',
                                                 f'url = "sftp://{server.user}@127.0.0.1:{server.port}/exports"'))
    return config, {"KARLA_CONNECTOR_SOURCES__WAREHOUSE__SFTP__PASSWORD": server.password}


def test_end_to_end_over_sftp_with_reupload_and_error_folder(server: SftpServer, sftp_root: Path, tmp_path: Path, sandbox) -> None:
    exports = sftp_root / "exports"
    config, env = sftp_config(server, tmp_path, sandbox.url, error_folder="error")
    (exports / "orders_1.csv").write_text(f"{HEADER}\n1,10119,A,S,1,1\n2,,B,S,1,1\n")
    first = cli(config, "sync", env=env)
    assert first.returncode == 1, first.stderr
    assert set(sandbox.orders(SLUG)) == {"1"} and (exports / "error" / "orders_1.csv").exists()
    (exports / "orders_1.csv").write_text(f"{HEADER}\n1,10119,A,S,1,1\n2,80331,B,S,1,1\n")  # fixed and re-uploaded
    second = cli(config, "sync", env=env)
    assert second.returncode == 0, second.stderr
    assert set(sandbox.orders(SLUG)) == {"1", "2"}
    assert server.password not in first.stdout + first.stderr + second.stdout + second.stderr


def test_a_kept_file_is_not_downloaded_again(server: SftpServer, sftp_root: Path, tmp_path: Path, sandbox) -> None:
    """With after_processing = "keep" (a read-only account, say) every poll lists the folder; a file read
    before is recognised by name, size and mtime and not downloaded to be hashed again."""
    exports = sftp_root / "exports"
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    config = write_config(tmp_path, sandbox.url, extra=f'[sources.warehouse.sftp]\nknown_hosts = "{known}"\n')
    config.write_text(config.read_text().replace(f'url = "file://{tmp_path / "files"}"',
                                                 f'url = "sftp://{server.user}@127.0.0.1:{server.port}/exports"'))
    env = {"KARLA_CONNECTOR_SOURCES__WAREHOUSE__SFTP__PASSWORD": server.password}
    (exports / "orders_1.csv").write_text(f"{HEADER}\n1,10119,A,S,1,1\n")
    (exports / "orders_2.csv").write_text(f"{HEADER}\n2,10119,B,S,1,1\n")
    assert cli(config, "sync", env=env).returncode == 0
    assert set(sandbox.orders(SLUG)) == {"1", "2"} and server.bytes_read > 0
    downloaded = server.bytes_read

    again = cli(config, "sync", env=env)
    assert again.returncode == 0, again.stderr
    assert server.bytes_read == downloaded  # listed, not downloaded
    assert sorted(p.name for p in exports.iterdir()) == ["orders_1.csv", "orders_2.csv"]  # kept

    (exports / "orders_2.csv").write_text(f"{HEADER}\n2,10119,B,S,1,1\n3,10119,C,S,1,1\n")  # re-uploaded, changed
    third = cli(config, "sync", env=env)
    assert third.returncode == 0, third.stderr
    assert server.bytes_read - downloaded == (exports / "orders_2.csv").stat().st_size  # that file alone
    assert set(sandbox.orders(SLUG)) == {"1", "2", "3"}


def _write_rows(path: Path, count: int, scattered: bool = False) -> None:
    """``count`` orders of two rows each; ``scattered`` puts every order's second row in a second half."""
    with path.open("w") as f:
        f.write(HEADER + "\n")
        halves = ([range(count), range(count)] if scattered else [range(count)])
        for half, numbers in enumerate(halves):
            for n in numbers:
                f.write(f"{n},10119,Name {n},SKU-{n}-{half},1,9.99\n")
                if not scattered:
                    f.write(f"{n},10119,Name {n},SKU-{n}-1,1,9.99\n")


@pytest.mark.parametrize("scattered", [False, True], ids=["grouped-file", "scattered-rows"])
def test_memory_does_not_grow_with_the_file_over_sftp(server: SftpServer, sftp_root: Path, tmp_path: Path, scattered: bool) -> None:
    """100k rows peak no higher than 25k rows: a grouped file streams, a scattered one spills to buckets."""
    exports = sftp_root / "exports"
    _write_rows(exports / "warmup.csv", 10)
    _write_rows(exports / "orders_1.csv", 12_500, scattered)
    small = _child_peak(server, tmp_path, "warmup.csv")
    _write_rows(exports / "orders_1.csv", 50_000, scattered)
    large = _child_peak(server, tmp_path, "warmup.csv")
    assert (small[0], large[0]) == (12_500, 50_000)
    assert large[1] < small[1] * 1.3, f"peak {large[1]} reading 100k rows vs {small[1]} reading 25k"



def test_a_file_name_that_is_not_utf8_is_named_as_the_reason(server, sftp_root, tmp_path, sandbox) -> None:
    # paramiko decodes names strictly: one cp1252-named file failed every listing with "'utf-8' codec can't
    # decode byte 0xe4", a traceback that named neither the file nor the folder (found by review).
    import os

    exports = sftp_root / "exports"
    config, env = sftp_config(server, tmp_path, sandbox.url)
    (exports / "orders_1.csv").write_text(f"{HEADER}\n1,10119,A,S,1,1\n")
    with open(os.path.join(os.fsencode(exports), b"Lieferschein_M\xe4rz.pdf"), "wb") as pdf:
        pdf.write(b"%PDF")
    result = cli(config, "sync", env=env)
    assert result.returncode == 2 and "is not UTF-8" in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert "M\\xe4rz" in result.stdout + result.stderr
