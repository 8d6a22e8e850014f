"""Shared fixtures: a real Karla sandbox on loopback, config files, and the CLI as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "test-key-5f2c9a1e"  # distinctive, so a leak is easy to find in any output
SLUG = "test-shop"


@pytest.fixture(autouse=True)
def _forget_learnt_batch_limits() -> Iterator[None]:
    """Karla's batch limit learnt from 413s is kept per base URL for the process: a later test whose sandbox
    got the same port must not start with an earlier test's limit."""
    from connector.sender import _CAPS

    _CAPS.clear()
    yield
    _CAPS.clear()


@pytest.fixture()
def sandbox() -> Iterator:
    from connector.sandbox import Sandbox

    with Sandbox(credentials={SLUG: API_KEY}, bulk_max_items=50, bulk_max_bytes=1_000_000) as sb:
        yield sb


def write_config(
    tmp_path: Path,
    url: str,
    *,
    files: Path | None = None,
    karla: dict[str, object] | None = None,
    source: dict[str, object] | None = None,
    extra: str = "",
) -> Path:
    """A config file for one CSV source in ``files`` delivering to ``url``."""
    files = files or tmp_path / "files"
    files.mkdir(exist_ok=True)
    karla_lines = "\n".join(f"{k} = {_toml(v)}" for k, v in {"retry_attempts": 3, **(karla or {})}.items())
    # files are written just before each sync: no wait for them to settle
    source_lines = "\n".join(f"{k} = {_toml(v)}" for k, v in {"settle_seconds": 0, **(source or {})}.items())
    config = tmp_path / "karla-connector.toml"
    config.write_text(
        f'[karla]\nbase_url = "{url}"\nshop_slug = "{SLUG}"\napi_key = "{API_KEY}"\n{karla_lines}\n'
        f'[state]\npath = "{tmp_path / "state.db"}"\n'
        f'[log]\nformat = "json"\nlevel = "DEBUG"\n'
        f'[sources.warehouse]\ntype = "csv"\nurl = "file://{files}"\n{source_lines}\n{extra}',
        encoding="utf-8",
    )
    config.chmod(0o600)  # it holds the API key: as README advises (a 0644 one is warned about at start)
    return config


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def cli(config: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m connector --config CONFIG ARGS`` as a real process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KARLA_CONNECTOR_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(config), *args],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=config.parent,
    )


ORDER_HEADER = (
    "order_number,order_name,order_placed_at,email,currency,total_order_price,shipping_price,shipping_name,"
    "shipping_address_line_1,shipping_zip_code,shipping_city,shipping_country_code,sku,product_title,quantity,price"
)
FULFILLMENT_HEADER = "order_number,tracking_number,carrier,tracking_url,shipped_at,sku,quantity"


def order_rows(number: int, *, zip_code: str = "10119", lines: int = 2, name: str = "Jana Nováková") -> list[str]:
    rows = []
    for line in range(lines):
        head = (
            f"{number},#{number},2026-11-20T09:15:00+01:00,c{number}@example.com,EUR,{10 * lines + 4.9:.2f},4.90,{name},"
            f"Torstraße {number % 90 + 1},{zip_code},Berlin,DE"
        )
        rows.append(f"{head},SKU-{number}-{line},Artikel {line} „Spezial“,{line + 1},10.00")
    return rows


def write_orders(folder: Path, name: str, numbers: range | list[int], **kwargs: object) -> Path:
    lines = [ORDER_HEADER] + [row for n in numbers for row in order_rows(n, **kwargs)]  # type: ignore[arg-type]
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_fulfillments(folder: Path, name: str, rows: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join([FULFILLMENT_HEADER, *rows]) + "\n", encoding="utf-8")
    return path
