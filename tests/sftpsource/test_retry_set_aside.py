"""``dlq retry`` asks an SFTP source whether a letter's bad file still waits in its ``error_folder`` (found by
review last5): a new export of the same name read by the retry must not clear a letter naming no order."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SLUG, cli
from tests.sftpsource.server import SftpServer
from tests.sftpsource.test_sftp import sftp_config

HEADER = "order_number,shipping_zip_code,shipping_name,sku,quantity,price"


def test_a_header_letter_stays_while_its_file_waits_in_the_remote_error_folder(server: SftpServer, sftp_root: Path,
                                                                               tmp_path: Path, sandbox) -> None:
    exports = sftp_root / "exports"
    config, env = sftp_config(server, tmp_path, sandbox.url, after_processing="archive", error_folder="error")
    (exports / "orders.csv").write_text(HEADER.replace("shipping_zip_code", "plz") + "\n1,10119,A,S,1,1\n")
    assert cli(config, "sync", env=env).returncode == 1
    (letter,) = json.loads(cli(config, "dlq", "list", "--json", env=env).stdout)
    assert (exports / "error" / "orders.csv").exists()
    (exports / "orders.csv").write_text(f"{HEADER}\n3,10119,C,S,1,1\n")  # the next export, before the timer's sync
    kept = cli(config, "dlq", "retry", str(letter["id"]), env=env)
    assert kept.returncode == 0 and "its bad file still waits in error/orders.csv" in kept.stdout, kept.stdout + kept.stderr
    assert [x["id"] for x in json.loads(cli(config, "dlq", "list", "--json", env=env).stdout)] == [letter["id"]]
    (exports / "error" / "orders.csv").unlink()
    (exports / "orders.csv").write_text(f"{HEADER}\n1,10119,A,S,1,1\n")  # fixed, moved back
    assert cli(config, "dlq", "retry", str(letter["id"]), env=env).returncode == 0
    assert json.loads(cli(config, "dlq", "list", "--json", env=env).stdout) == []
    assert sorted(sandbox.orders(SLUG)) == ["1", "3"]
