"""``karla-connector demo``: the whole product on this machine in a few seconds.

Starts the Karla sandbox on a free loopback port, writes a small realistic CSV export (note the file
names: fulfillments sort before orders, yet every order arrives with or before its parcels), syncs,
shows what Karla received and the one dead letter, then syncs again to show nothing is re-sent.

The work folder is replaced on every run, so the demo only ever deletes a folder it wrote itself: one that
holds its marker file ``.karla-demo``. A missing or empty folder is used; anything else is refused.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from connector.app import Connector
from connector.errors import ConfigError
from connector.settings import load_settings

__all__ = ["MARKER", "run_demo", "ORDERS_CSV", "FULFILLMENTS_CSV"]

MARKER = ".karla-demo"

ORDERS_CSV = """order_number;order_name;order_placed_at;email;currency;total_order_price;shipping_price;shipping_name;shipping_address_line_1;shipping_zip_code;shipping_city;shipping_country_code;sku;product_title;quantity;price
1001;#1001;2026-11-20T09:15:00+01:00;jana.novak@example.com;EUR;59,90;4,90;Jana Nováková;Torstraße 12;10119;Berlin;DE;TS-BLK-M;T-Shirt schwarz M;2;15,00
1001;#1001;;;;;;;;;;;SOCK-3P;Socken 3er-Pack;1;25,00
1002;#1002;2026-11-20T11:02:00+01:00;m.oconnor@example.com;EUR;189,00;0;Máire O'Connor;Hauptstraße 5;80331;München;DE;BOOT-42;Wanderstiefel 42;1;149,00
1002;#1002;;;;;;;;;;;JKT-L;Regenjacke L;1;40,00
1003;#1003;2026-11-21T16:40:00+01:00;lea@example.com;EUR;24,50;4,50;Léa Dubois;Rue de Rivoli 3;75001;Paris;FR;MUG-01;Tasse „Morgen“;2;10,00
1004;#1004;2026-11-22T08:05:00+01:00;tom@example.com;EUR;12,00;0;Tom Berg;Kastanienallee 1;;Berlin;DE;CARD-1;Grußkarte;1;12,00
"""

FULFILLMENTS_CSV = """order_number;tracking_number;carrier;tracking_url;shipped_at;sku;quantity
1001;00340434161234567890;DHL;https://www.dhl.de/de/privatkunden.html?piececode=00340434161234567890;2026-11-21T10:00:00+01:00;;
1002;H1002000000000001;Hermes;;2026-11-21T12:00:00+01:00;BOOT-42;1
1002;H1002000000000002;Hermes;;2026-11-22T09:30:00+01:00;JKT-L;1
1003;LP00112233445566;Kiala Express;;2026-11-22T14:00:00+01:00;;
"""

CONFIG = """# Written by `karla-connector demo`: the sandbox stands in for Karla.
[karla]
base_url = "{url}"
shop_slug = "demo-shop"
api_key = "demo-key"
bulk_max_orders = 50

[state]
path = "{state}"

[log]
format = "text"
level = "WARNING"

[sources.warehouse]
type = "csv"
url = "file://{files}"
settle_seconds = 0  # the demo writes its files just before it reads them; keep the default wait for a real ERP
"""


def check_workdir(workdir: Path) -> None:
    """``ConfigError`` unless ``workdir`` is missing, empty, or a folder an earlier demo wrote."""
    hint = "choose another --workdir (a new or empty folder)"
    if workdir.is_symlink() or (workdir.exists() and not workdir.is_dir()):
        raise ConfigError(f"demo folder {workdir} exists and is not a folder; {hint}")
    if not workdir.exists():
        return
    try:
        entries = [entry.name for entry in workdir.iterdir()]
    except OSError as exc:
        raise ConfigError(f"demo folder {workdir}: {exc.strerror or exc}; {hint}") from None
    if entries and not (workdir / MARKER).is_file():
        raise ConfigError(
            f"demo folder {workdir} is not empty and was not written by the demo (no {MARKER} file in it); "
            f"the demo replaces its folder's contents, so it refuses to touch this one: {hint}, or delete it yourself"
        )


def _write_sample(workdir: Path, url: str) -> Path:
    check_workdir(workdir)  # again, right before deleting: nothing may have appeared since the first check
    if (workdir / MARKER).is_file():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # The marker first: a demo interrupted half-way still leaves a folder the next run may replace.
    (workdir / MARKER).write_text("Written by `karla-connector demo`; the next demo run replaces this folder.\n", encoding="utf-8")
    files = workdir / "exports"
    files.mkdir()
    (files / "orders_001.csv").write_text(ORDERS_CSV, encoding="utf-8")
    (files / "fulfillments_001.csv").write_text(FULFILLMENTS_CSV, encoding="utf-8")
    config = workdir / "karla-connector.toml"
    state = (workdir / "karla-connector.db").resolve()
    config.write_text(CONFIG.format(url=url, state=state, files=files.resolve()), encoding="utf-8")
    config.chmod(0o600)  # it holds the sandbox's key: as README advises (a 0644 one is warned about at start)
    return config


def _received(out: Console, sandbox: object) -> None:
    table = Table(title="what Karla received (sandbox)", show_edge=False)
    for column in ("order", "name", "zip", "products", "trackings"):
        table.add_column(column)
    for number, order in sorted(sandbox.orders("demo-shop").items()):  # type: ignore[attr-defined]
        parcels = []
        for t in order.get("trackings", []):
            carrier = t.get("carrier_reference") or f"company={t.get('tracking_company')}"
            skus = ",".join(p.get("sku", "?") for p in t.get("products", [])) or "all items"
            parcels.append(f"{t['tracking_number']} ({carrier}; {skus})")
        products = ", ".join(f"{p.get('quantity')}× {p.get('title')}" for p in order.get("products", []))
        table.add_row(number, order.get("order_name") or "", order.get("address", {}).get("zip_code", ""), products, "\n".join(parcels) or "-")
    out.print(table)


def run_demo(workdir: Path, out: Console) -> int:
    from connector.commands import dead_letters
    from connector.logs import configure_logging
    from connector.sandbox import Sandbox

    workdir = workdir.absolute()  # stays valid even if the working directory is the folder being replaced
    check_workdir(workdir)  # before anything starts
    configure_logging("text", "WARNING")
    with Sandbox(credentials={"demo-shop": "demo-key"}) as sandbox:
        config = _write_sample(workdir, sandbox.url)
        settings = load_settings(config)
        out.rule("first sync")
        first = _sync(settings, out)
        _received(out, sandbox)
        for letter in dead_letters(settings):
            out.print(f"dead letter #{letter['id']} at {letter['location']}: {letter['reason']}", highlight=False, markup=False)
        out.rule("second sync (nothing changed)")
        second = _sync(settings, out)
        out.print(f"second sync sent {second.requests} requests: unchanged orders are never sent twice", highlight=False)
        command = Path(sys.argv[0]) if Path(sys.argv[0]).name == "karla-connector" else Path(sys.executable).parent / "karla-connector"
        out.print(f"\nfiles, config and state are in {workdir}/ — try: {command} --config {config} status", highlight=False)
    return 0 if first.delivery.orders and second.requests == 0 else 1


def _sync(settings: object, out: Console):  # type: ignore[no-untyped-def]
    from connector import cli_render

    connector = Connector(settings)  # type: ignore[arg-type]
    try:
        report = connector.sync()
    finally:
        connector.close()
    cli_render.sync_report(out, report)
    return report
