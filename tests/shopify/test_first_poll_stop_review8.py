"""A `sync` stopped (SIGTERM) during a new install's first-poll bulk fill (found by the crash8 review): it said
"the next sync resumes from there", yet bulk pages store no cursor until the whole result is in, so the next
sync starts a new bulk operation over all history. It now says the first read of that source starts again.
A real `sync` process against the fake Shopify and the Karla sandbox on loopback."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from adapters.shopify.adapter import BULK_FIRST_POLL_FROM
from connector.sync_stop import interrupted
from tests.conftest import API_KEY, SLUG, cli
from tests.shopify.factories import order
from tests.shopify.fake_server import FakeShopify


def _config(tmp_path: Path, karla_url: str, shop: FakeShopify) -> Path:
    config = tmp_path / "karla-connector.toml"
    config.write_text(
        f'[karla]\nbase_url = "{karla_url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n'
        f'[state]\npath = "{tmp_path / "state.db"}"\n[log]\nformat = "json"\nlevel = "DEBUG"\n'
        f'[sources.shop]\ntype = "shopify"\nshop_domain = "{shop.domain}"\napi_base_url = "{shop.url}"\n'
        f'access_token = "{shop.token}"\nbulk_poll_seconds = 0.05\n', encoding="utf-8")
    config.chmod(0o600)
    return config


def test_a_first_poll_bulk_fill_stopped_by_sigterm_says_the_first_read_starts_again(tmp_path: Path, sandbox: Any) -> None:
    with FakeShopify() as shop:
        an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        for n in range(BULK_FIRST_POLL_FROM):  # enough for the first poll to read by a bulk operation
            shop.add_order(order(n), updated=an_hour_ago - timedelta(seconds=n))
        shop.bulk.polls_to_finish = 10**9  # Shopify still working when the signal comes
        polled = threading.Event()
        shop.on_request = lambda record: polled.set() if record["operation"] == "BulkStatus" else None
        config = _config(tmp_path, sandbox.url, shop)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
        proc = subprocess.Popen([sys.executable, "-m", "connector", "--config", str(config), "sync"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert polled.wait(60), f"no bulk operation was polled: {proc.communicate(timeout=60)}"
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 143, (proc.returncode, stderr[-3000:])
        said = "interrupted (SIGTERM): what was read so far is queued and kept; the first read of shop starts again"
        assert said in stderr, stderr[-3000:]
        assert "resumes from there" not in stderr, stderr[-3000:]
        assert [op.status for op in shop.bulk.ops.values()] == ["CANCELED"]  # not left to block the next one
    status = cli(config, "status", "--json")
    assert status.returncode == 0 and '"cursors": {}' in status.stdout.replace("\n", ""), status.stdout  # as said


def test_only_the_sources_without_a_cursor_are_said_to_start_again() -> None:
    def said(stored: dict[str, bool] | None) -> str:
        buffer = io.StringIO()
        assert interrupted(Console(file=buffer, width=400), False, sigterm=True, stored=stored) == 143
        return buffer.getvalue()

    mixed = said({"warehouse": True, "shop": False})
    assert "the first read of shop starts again" in mixed and "the other sources resume from there" in mixed, mixed
    for known_or_not in ({"warehouse": True}, None):  # None: the state file was not opened by this run
        assert "the next sync resumes from there" in said(known_or_not)
