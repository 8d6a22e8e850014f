"""A plugin whose ``close()`` raises, during `dlq retry`'s question to it (``set_aside``) after the re-read: a WARNING
naming the source and adapter type, as in a sync, not an internal error after the retry's work (found by the sdk6
review). The plugin is a real installed package run by the real CLI against the Karla sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import API_KEY, SLUG, cli
from tests.sdk.test_sdk_review6 import _package

PLUGIN = '''
from __future__ import annotations
from typing import Literal
from adapters.base import Page, Rejected, SourceConfig, StreamSpec


class CloseRaisesConfig(SourceConfig):
    type: Literal["closeraises"] = "closeraises"


class CloseRaises:
    """One file's header is bad: a letter naming no order, at ``orders.jsonl:1`` (a file it can read again)."""
    type = "closeraises"
    Config = CloseRaisesConfig

    def __init__(self, name, config, context):
        self.context = context

    def check(self):
        return ["reachable"]

    def streams(self):
        return [StreamSpec("orders")]

    def read(self, stream, cursor):
        yield Page(rejected=[Rejected(location="orders.jsonl:1", reason="no order_number column")], cursor="1")

    def set_aside(self, path):
        return None  # nothing set aside

    def close(self):
        raise OSError("connection reset while closing")
'''


def test_a_close_that_raises_during_dlq_retry_is_a_warning(tmp_path: Path, sandbox) -> None:
    _package(tmp_path / "site", "closeraises-plugin", "closeraises_plugin", PLUGIN,
             {"closeraises": "closeraises_plugin:CloseRaises"})
    config = tmp_path / "karla-connector.toml"
    config.write_text(
        f'[karla]\nbase_url = "{sandbox.url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\nretry_attempts = 1\n'
        f'[state]\npath = "{tmp_path / "state.db"}"\n[sources.erp]\ntype = "closeraises"\n')
    config.chmod(0o600)
    env = {"PYTHONPATH": str(tmp_path / "site")}
    assert cli(config, "sync", env=env).returncode == 1  # the letter
    (letter,) = json.loads(cli(config, "dlq", "list", "--json", env=env).stdout)
    retried = cli(config, "dlq", "retry", str(letter["id"]), env=env)
    said = retried.stdout + retried.stderr
    assert retried.returncode == 1, said  # still bad: its letter refreshed, as any re-read that fails again
    assert "internal error" not in said and "Traceback" not in said, said
    warned = "source erp: the closeraises adapter's close() failed: OSError: connection reset while closing"
    assert said.count(warned) == 2, said  # after the re-read (the engine's), and after set_aside
    assert [x["id"] for x in json.loads(cli(config, "dlq", "list", "--json", env=env).stdout)] == [letter["id"]]
