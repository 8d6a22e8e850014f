"""A Shopware (or a proxy before it) echoing the OAuth bearer token in its errors: the token, fetched at run
time and configured nowhere, is masked in what `check`, `sync` and `status` print and in the stored run error,
also when Shopware's error text is cut at 300 characters across it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, SLUG, cli
from tests.shopware.conftest import CLIENT_ID, SECRET
from tests.shopware.fake_criteria import CriteriaError
from tests.shopware.fake_server import FakeShopware


class EchoingShopware(FakeShopware):
    """Refuses every search (400) with a detail naming the bearer token it issued last."""

    def __init__(self, detail: Callable[[str], str]) -> None:
        super().__init__(lambda: datetime.now(timezone.utc))  # a subprocess cannot share a fake clock
        self.detail = detail

    def _search(self, entity: str, criteria: dict[str, Any], ignore_body: bool, ids_only: bool = False) -> Any:
        with self.lock:
            raise CriteriaError(400, "FRAMEWORK__ECHO", self.detail(list(self.tokens)[-1]))


@pytest.fixture()
def echoing() -> Iterator[Callable[[Callable[[str], str]], EchoingShopware]]:
    started: list[EchoingShopware] = []

    def start(detail: Callable[[str], str]) -> EchoingShopware:
        started.append(EchoingShopware(detail).start())
        return started[-1]

    yield start
    for fake in started:
        fake.stop()


def _runs(tmp_path: Path, shop: FakeShopware, sandbox: Any) -> list[str]:
    config = tmp_path / "karla-connector.toml"
    config.write_text(
        f'[karla]\nbase_url = "{sandbox.url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n'
        f'[state]\npath = "{tmp_path / "state.db"}"\n[log]\nformat = "json"\nlevel = "DEBUG"\n'
        f'[sources.sw]\ntype = "shopware"\nbase_url = "{shop.url}"\nclient_id = "{CLIENT_ID}"\n', encoding="utf-8")
    config.chmod(0o600)  # no warning about a readable config in the output
    env = {"KARLA_CONNECTOR_SOURCES__SW__CLIENT_SECRET": SECRET}
    runs = [cli(config, "check", env=env), cli(config, "sync", env=env), cli(config, "status", "--json", env=env)]
    assert runs[0].returncode != 0 and runs[1].returncode != 0, runs[1].stderr
    return [run.stdout + run.stderr for run in runs]


@pytest.mark.parametrize("pad", [0, 258], ids=["whole", "cut-at-300"])
def test_the_bearer_token_is_masked_everywhere(
    tmp_path: Path, sandbox: Any, echoing: Callable[[Callable[[str], str]], EchoingShopware], pad: int
) -> None:
    # "FRAMEWORK__ECHO: " + pad + " auth=Bearer " puts the token at 288 when padded: 12 of its 32 characters
    # are left before the 300-character cut
    shop = echoing(lambda token: "x" * pad + f" auth=Bearer {token}")

    shown = _runs(tmp_path, shop, sandbox)

    assert shop.tokens, "the fake issued no token"
    for token in shop.tokens:
        for text in shown:
            assert token[:12] not in text
    assert "auth=Bearer ***" in shown[1] and "auth=Bearer ***" in shown[2]  # the log line and the stored run error
