"""``karla-connector init [PATH]``: write the example configuration where no checkout lies around to copy it
from (a wheel install, the container). Kept apart from ``connector.cli`` to keep each file short.

The text is config.example.toml itself: the wheel ships the repository's file as
``connector/config.example.toml`` (pyproject's ``force-include``), so there is one file, the one the tests
check (every key named, no secret set)."""

from __future__ import annotations

import os
import shlex
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["example_text", "init"]

EXAMPLE = "config.example.toml"


def example_text() -> str:
    """The example the wheel ships, else (a checkout, an editable install) the repository's own."""
    shipped = resources.files("connector").joinpath(EXAMPLE)
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / EXAMPLE).read_text(encoding="utf-8")


def _write_new(path: Path, text: str) -> None:
    """Create ``path`` 0600 (other users need not read a file one may put a key in), never replacing one:
    O_EXCL also refuses a symlink, so a config elsewhere is never written through."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _next_steps(path: Path) -> str:
    config = shlex.quote(str(path))
    return (f"wrote {path} (mode 0600; it holds no secret). Next:\n"
            f"  1. edit it: [karla] shop_slug, and [sources.warehouse] url (your CSV folder), or uncomment the\n"
            f"     Shopify or Shopware source at its end instead\n"
            f"  2. export KARLA_CONNECTOR_KARLA__API_KEY=...   # your Karla API key: in the environment, not the file\n"
            f"  3. karla-connector --config {config} check\n"
            f"A systemd service (DynamicUser=) or a container reads it as another user: chmod 0644 {config}.")


def init(
    path: Annotated[Optional[Path], typer.Argument(metavar="PATH", show_default=False, help=(
        "Where to write it (default: --config, else $KARLA_CONNECTOR_CONFIG, else ./karla-connector.toml); "
        "- prints it to stdout"))] = None,
) -> None:
    """Write the example configuration (every key, commented; no secret) to PATH, never over an existing file."""
    from connector.cli import _State, _fail, err
    from connector.settings import config_path

    if path == Path("-"):
        sys.stdout.write(example_text())
        return
    target, _ = config_path(path if path is not None else _State.config)
    try:
        _write_new(target, example_text())
    except FileExistsError:
        raise _fail(f"{target} exists: init never replaces a config; edit it, or name another path "
                    "(karla-connector init PATH)") from None
    except FileNotFoundError:
        raise _fail(f"cannot write {target}: the folder {target.parent} does not exist") from None
    except OSError as exc:  # a read-only or foreign folder (a container's /etc): stdout goes anywhere
        raise _fail(f"cannot write {target}: {exc.strerror or exc}; or print it with "
                    f"`karla-connector init - > FILE`") from None
    err.print(_next_steps(target), highlight=False, markup=False)
