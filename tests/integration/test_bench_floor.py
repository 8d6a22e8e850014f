"""The benchmark's floor does the connector's job minus its machinery: same items, same bytes, same requests.

BENCHMARKS.md compares the connector's wall time with the floor's. That ratio only measures the connector's
overhead (validation, state, change detection) if both send the same thing to the same sandbox; a floor
that sent less would make the sandbox's share of the work look like the connector's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import floor
from bench.__main__ import KEY, MAX_BYTES, MAX_ITEMS, SLUG, USER, config
from bench.generate import generate
from connector.sandbox import Sandbox
from tests.conftest import cli


def _stored(sb: Sandbox) -> dict[str, dict[str, Any]]:
    """What the sandbox keeps per order, without the uuid it assigns itself."""
    return {key: {k: v for k, v in order.items() if k != "uuid"} for key, order in sb.orders(SLUG).items()}


def test_the_floor_sends_the_connectors_bytes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, 240)  # parcels from every carrier in the generator, one Karla does not know among them
    sent: dict[str, list[tuple[int, int]]] = {}
    stored: dict[str, dict[str, dict[str, Any]]] = {}
    for side in ("floor", "connector"):
        with Sandbox(credentials={USER: KEY}, bulk_max_items=MAX_ITEMS, bulk_max_bytes=MAX_BYTES) as sb:
            if side == "floor":
                assert floor.main(str(data), sb.url, SLUG, USER, KEY, MAX_ITEMS, MAX_BYTES) == 0
            else:
                done = cli(config(data, tmp_path / "state.db", sb.url), "sync")
                assert done.returncode == 0, done.stderr
            sent[side] = [(r.items, r.body_bytes) for r in sb.requests]
            stored[side] = _stored(sb)

    assert [items for items, _ in sent["floor"]] == [50, 50, 50, 50, 40]
    assert [items for items, _ in sent["connector"]] == [50, 50, 50, 50, 40]
    # the same bytes in all (which order goes in which batch differs: the floor sends in file order, the
    # connector's ordinary drain in key order)
    assert sum(size for _, size in sent["floor"]) == sum(size for _, size in sent["connector"])
    assert len(stored["floor"]) == 240
    assert any(o["trackings"] for o in stored["floor"].values())
    assert stored["floor"] == stored["connector"]
